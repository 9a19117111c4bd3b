"""The persona: who the companion is, as data.

Fields follow the Character Card V2 spec (``chara_card_v2``) so cards from
SillyTavern and similar tools round-trip; ``baseline`` and ``voice`` are this
project's extensions (stored under ``extensions.companion`` in a card).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from companion.types import Mood


@dataclass(frozen=True, slots=True)
class SpeechStyle:
    """How to say it: the engine's voice id ("" = its default), words per minute, volume 0..1.

    A persona's ``voice`` is one; :func:`companion.voice.style.speech_style` turns
    it into the style of the moment (paced by the mood) that a TTS engine takes.
    """

    voice: str = ""
    rate: float = 175.0
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
    voice: SpeechStyle = field(default_factory=SpeechStyle)
    #: Sampling settings of this persona (``[sampling]``: temperature, top_p,
    #: min_p, repetition_penalty, dry_multiplier, echo_penalty, max_sentences,
    #: ...); a user's own config beats them (see :mod:`companion.turnparams`).
    sampling: Mapping[str, float] = field(default_factory=dict)
