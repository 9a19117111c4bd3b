"""Frozen value types that cross module boundaries.

Everything here is plain data: no I/O, no heavy imports. Times are UTC-aware
``datetime`` objects; ids are integers assigned by the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message as the language model sees it."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Sampling settings for one generation. ``temperature == 0`` means greedy."""

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # Text the assistant's reply is forced to start with (prefill). The backend
    # does not yield it again; the dialog manager prepends it to the reply.
    prefill: str = ""
    # Sampling guards (see companion.llm.sampling). Keep tokens at least min_p
    # times as likely as the best one.
    min_p: float = 0.0
    # Over the reply's own tokens: CTRL's multiplicative penalty (1 = off) and
    # OpenAI's additive frequency and presence penalties.
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    # DRY: a token that would go on repeating an earlier stretch of the context
    # (prompt and reply) longer than dry_allowed_length tokens loses
    # dry_multiplier * dry_base ** (length - dry_allowed_length) (0 = off).
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    # The same rule against echo_text alone (the user's last message): a reply
    # does not go on copying what the user just said (0 = off).
    echo_penalty: float = 0.0
    echo_allowed_length: int = 2
    echo_text: str = ""
    # End the reply at the sentence end after this many sentences (0 = no limit).
    max_sentences: int = 0
    # With max_sentences, a reply may run a little past max_tokens to end its
    # sentence; hard_limit makes max_tokens exact (a caller asked for it).
    hard_limit: bool = False


@dataclass(frozen=True, slots=True)
class Turn:
    """One stored utterance of a conversation."""

    id: int
    user_id: str
    session_id: int
    role: Role
    content: str
    created_at: datetime
    interrupted: bool = False
    #: A reply the reply guard could not fix: kept as said, left out of prompts.
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """Something remembered about the user: a fact, a past turn or a session summary.

    ``kind`` is a fact kind (name, work, person, place, like, dislike, plan,
    fact), ``"episode"`` (a stored turn; ``id`` is the turn id) or ``"summary"``
    (a finished session condensed; ``id`` is the summary id). ``turn_ids`` are
    the turns it came from.
    """

    id: int
    user_id: str
    kind: str
    text: str
    source_turn_id: int | None
    created_at: datetime
    score: float = 0.0
    pinned: bool = False
    importance: float = 0.5
    turn_ids: tuple[int, ...] = ()
    session_id: int | None = None


@dataclass(frozen=True, slots=True)
class Mood:
    """Valence (unpleasant -1 .. pleasant +1) and arousal (calm -1 .. excited +1)."""

    valence: float = 0.0
    arousal: float = 0.0


@dataclass(frozen=True, slots=True)
class Relationship:
    """How long and how much the companion has talked with this user."""

    turns: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    sessions: int = 0


@dataclass(frozen=True, slots=True)
class PersonaState:
    """The companion's evolving state towards one user."""

    mood: Mood = field(default_factory=Mood)
    relationship: Relationship = field(default_factory=Relationship)
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A conversation session: a run of turns from one sitting."""

    id: int
    user_id: str
    started_at: datetime
    ended_at: datetime | None = None
