"""One :class:`~companion.Companion` per user, all sharing one loaded model.

The server keeps a companion open for each user it has heard from, built on
the same data directory as the terminal chat, so the memories are the same. A
user's companion is opened at their first request and closed (ending its
session, as leaving the chat does) when it has been idle for ``idle_seconds`` or
when more than ``max_users`` are open (the least recently used first); the next
request opens a new session. Each user has a lock, so that two requests of one
user are two turns, in order.

Each companion is built as the chat's is (:meth:`Companion.build`), so its
memory is condensed between sessions as the chat's is. The model is loaded once
and shared: each companion talks to it through a :class:`TurnLLM`, which
remembers what the turn sent, and to its memory through a :class:`TimedMemory`,
which times recall. A request's settings are the turn's own
(:meth:`Companion.say`'s overrides), never written to the companion or the model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from companion.config import Config
from companion.dialog import Companion
from companion.errors import CompanionError
from companion.llm.base import LLM
from companion.memory.base import Consolidating, Memory
from companion.persona import Persona
from companion.types import GenerationParams, MemoryItem, Message, Turn

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TurnLLM:
    """The shared model as one user's companion sees it.

    ``params`` and ``messages`` record what the last turn asked for, and
    ``generated`` the tokens of its reply, counted piece by piece as they pass
    (only for a backend that does not report them itself in ``last_stats``).
    """

    def __init__(self, llm: LLM) -> None:
        self.inner = llm
        self.name = llm.name
        self.context_length = llm.context_length
        self.params: GenerationParams | None = None
        self.messages: list[Message] = []
        self.generated = 0

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        self.params, self.messages, self.generated = params, list(messages), 0
        chunks = self.inner.stream(messages, params)
        return chunks if hasattr(self.inner, "last_stats") else self._counted(chunks)

    def _counted(self, chunks: Iterator[str]) -> Iterator[str]:
        try:
            for piece in chunks:
                self.generated += self.inner.count_tokens(piece)
                yield piece
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # closing the reply cancels generation


class TimedMemory:
    """A :class:`~companion.memory.base.Memory` that times each recall (``seconds``);
    it consolidates as the memory it wraps does."""

    def __init__(self, inner: Memory) -> None:
        self.inner = inner
        self.seconds = 0.0

    def remember(self, turn: Turn) -> list[MemoryItem]:
        return self.inner.remember(turn)

    def recall(self, user_id: str, query: str, *, limit: int = 5) -> list[MemoryItem]:
        started = time.perf_counter()
        try:
            return self.inner.recall(user_id, query, limit=limit)
        finally:
            self.seconds = time.perf_counter() - started

    def items(self, user_id: str) -> list[MemoryItem]:
        return self.inner.items(user_id)

    def forget(self, user_id: str, target: int | str) -> list[MemoryItem]:
        return self.inner.forget(user_id, target)

    def consolidate(self, user_id: str, *, keep_session: int | None = None) -> list[MemoryItem]:
        if not isinstance(self.inner, Consolidating):
            return []
        return self.inner.consolidate(user_id, keep_session=keep_session)


@dataclass(eq=False)
class UserSession:
    """A user's open companion, with what the server needs around it."""

    user: str
    companion: Companion
    llm: TurnLLM
    memory: TimedMemory
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    in_use: int = 0


class SessionPool:
    """Opens, hands out and closes the users' companions (thread-safe)."""

    def __init__(
        self,
        llm: LLM,
        config: Config,
        persona: Persona,
        *,
        home: Path,
        max_users: int = 64,
        idle_seconds: float = 1800.0,
        clock: Clock | None = None,
    ) -> None:
        self.llm = llm
        self.config = config
        self.persona = persona
        self.home = Path(home)
        self.max_users = max_users
        self.idle_seconds = idle_seconds
        self._clock = clock or _utcnow
        self._sessions: dict[str, UserSession] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def users(self) -> list[str]:
        with self._lock:
            return sorted(self._sessions)

    @contextmanager
    def session(self, user: str) -> Iterator[UserSession]:
        """The user's session, opened if needed, kept open while the block runs."""
        session = self._acquire(user)
        try:
            yield session
        finally:
            with self._lock:
                session.in_use -= 1
                session.last_used = time.monotonic()

    def close(self) -> None:
        """Close every companion (ending their sessions); later requests are refused."""
        with self._lock:
            self._closed = True
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            with session.lock:
                session.companion.close()

    # -- internals -----------------------------------------------------------

    def _acquire(self, user: str) -> UserSession:
        stale: list[UserSession] = []
        with self._lock:
            if self._closed:
                raise CompanionError("the server is shutting down")
            now = time.monotonic()
            session = self._sessions.get(user)
            expired = session is not None and now - session.last_used > self.idle_seconds
            if session is not None and expired and not session.in_use:
                stale.append(self._sessions.pop(user))
                session = None
            if session is None:
                session = self._open(user)
                self._sessions[user] = session
            session.in_use += 1
            session.last_used = now
            stale += self._evict()
        for old in stale:
            with old.lock:
                old.companion.close()
        return session

    def _evict(self) -> list[UserSession]:
        """Take out the least recently used idle sessions beyond ``max_users``."""
        idle = sorted(
            (s for s in self._sessions.values() if not s.in_use), key=lambda s: s.last_used
        )
        out: list[UserSession] = []
        while len(self._sessions) > self.max_users and idle:
            victim = idle.pop(0)
            out.append(self._sessions.pop(victim.user))
        return out

    def _open(self, user: str) -> UserSession:
        llm = TurnLLM(self.llm)
        companion = Companion.build(
            llm=llm,
            persona=self.persona,
            config=self.config.with_overrides(user=user),
            home=self.home,
            clock=self._clock,
            wrap_memory=TimedMemory,
        )
        assert isinstance(companion.memory, TimedMemory)
        return UserSession(user, companion, llm, companion.memory)
