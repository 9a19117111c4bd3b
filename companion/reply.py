"""The one lazy reply object.

Iterate a :class:`Reply` to stream its text; call :meth:`Reply.text` to collect
it. Generation starts on first use, and the finished reply replays from memory.
When the stream ends (finished, interrupted, or failed) the reply is handed to
``on_finish`` exactly once, which is how the dialog manager stores it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from companion.text import strip_controls

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Finished:
    """How a reply ended: its full text, and whether it was cut short."""

    text: str
    interrupted: bool


class Reply(Generic[T]):
    """A streamed reply: ``for chunk in reply`` or ``reply.text()``.

    ``result`` holds what ``on_finish`` returned (the stored turn) once done;
    ``notes`` carries messages for the user (e.g. that a long message was cut
    down for the model).
    """

    def __init__(
        self,
        chunks: Iterator[str],
        on_finish: Callable[[Finished], T],
        *,
        prefix: str = "",
        notes: tuple[str, ...] = (),
    ) -> None:
        self._source = chunks
        self._on_finish = on_finish
        self._prefix = prefix
        self._chunks: list[str] = []
        self._lock = threading.Lock()
        self._done = False
        self.interrupted = False
        self.notes = notes
        self.result: T | None = None

    @property
    def done(self) -> bool:
        return self._done

    def __iter__(self) -> Iterator[str]:
        if self._done:
            yield from self._chunks
            return
        with self._lock:
            if self._done:  # another thread finished it while we waited
                yield from self._chunks
                return
            yield from self._stream()

    def _stream(self) -> Iterator[str]:
        finished = False
        try:
            if self._prefix:
                self._chunks.append(self._prefix)
                yield self._prefix
            for raw in self._source:
                chunk = strip_controls(raw)
                if chunk:
                    self._chunks.append(chunk)
                    yield chunk
            finished = True
        finally:
            # Reached on normal end, on an exception inside generation (e.g.
            # KeyboardInterrupt), and when the consumer stops iterating.
            self._finish(interrupted=not finished)

    def _finish(self, *, interrupted: bool, kept: str | None = None) -> None:
        if self._done:
            return
        self._done = True
        self.interrupted = interrupted
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
        if kept is not None:
            self._chunks = [kept] if kept else []
        self.result = self._on_finish(Finished("".join(self._chunks), interrupted))

    def text(self) -> str:
        """The whole reply (generating the rest of it first, if needed)."""
        for _ in self:
            pass
        return "".join(self._chunks)

    def interrupt(self, *, kept: str | None = None) -> None:
        """Stop generating; what was produced so far is kept, marked as interrupted.

        ``kept`` replaces the text to keep, e.g. with the part of the reply that
        was spoken aloud before the user cut in (the rest never reached them).
        Does nothing once the reply has finished (see :meth:`Companion.cut_reply`).
        """
        if not self._done:
            self._finish(interrupted=True, kept=kept)

    def __str__(self) -> str:
        return self.text()
