"""The memory protocols: what the dialog needs from long-term memory.

:class:`Memory` is the one protocol the dialog talks to; :class:`Extractor`
turns a user's message into :class:`Fact` values. Both are small on purpose: a
memory with embeddings, summaries or a model-based extractor is a new class that
satisfies the same protocol, not a change to its callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from companion.types import MemoryItem, Turn

FactKind = Literal["name", "work", "person", "place", "like", "dislike", "plan", "fact"]

#: Every fact kind, in the order a person would list them.
FACT_KINDS: tuple[FactKind, ...] = (
    "name", "work", "person", "place", "like", "dislike", "plan", "fact",
)


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing learned about the user, as a short third-person sentence.

    ``text`` is ready for a prompt: ``User's sister is called Maya.`` It is
    always written by the extractor from a template, never copied as an
    instruction from the user's message.
    """

    kind: FactKind
    text: str


@runtime_checkable
class Extractor(Protocol):
    """Finds facts about the user in one message."""

    def extract(self, text: str, now: datetime) -> list[Fact]:
        """The facts stated in ``text``; relative dates are resolved against ``now``
        (in ``now``'s time zone)."""
        ...


@runtime_checkable
class Memory(Protocol):
    """Long-term memory of the user's facts."""

    def remember(self, turn: Turn) -> list[MemoryItem]:
        """Extract facts from a stored user turn and keep them (inside the caller's
        transaction, if one is open); returns what was stored."""
        ...

    def recall(self, user_id: str, query: str, *, limit: int = 5) -> list[MemoryItem]:
        """The facts most relevant to ``query``, best first, with ``score`` set
        (higher is more relevant). Only matches: no fallback."""
        ...

    def items(self, user_id: str) -> list[MemoryItem]:
        """Every current fact of the user, newest first."""
        ...

    def forget(self, user_id: str, target: int | str) -> list[MemoryItem]:
        """Remove one fact by id, or every fact matching all the words; returns
        what was removed."""
        ...


@runtime_checkable
class Consolidating(Protocol):
    """A memory that condenses finished sessions between sessions (not during a reply)."""

    def consolidate(self, user_id: str, *, keep_session: int | None = None) -> list[MemoryItem]:
        """Summarize the user's finished sessions (all but ``keep_session``); returns the
        new summaries."""
        ...
