"""The persona: who the companion is, as data.

Fields follow the Character Card V2 spec (``chara_card_v2``) so cards from
SillyTavern and similar tools round-trip; ``baseline`` and ``voice`` are this
project's extensions (stored under ``extensions.companion`` in a card).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from companion.types import Mood


@dataclass(frozen=True, slots=True)
class Voice:
    """How the persona sounds when spoken (TTS): engine voice id, words/min, 0..1."""

    voice: str = ""
    rate: int = 175
    volume: float = 0.9


@dataclass(frozen=True, slots=True)
class Persona:
    """A character definition. ``{{char}}`` and ``{{user}}`` are substituted when rendered."""

    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    creator: str = ""
    character_version: str = ""
    creator_notes: str = ""
    # companion extensions
    baseline: Mood = field(default_factory=Mood)
    voice: Voice = field(default_factory=Voice)
