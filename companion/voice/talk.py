"""Push-to-talk: when the user holds the talk key.

The voice loop asks :meth:`TalkKey.held` once per frame; what the microphone
hears while it is held is one turn, and pressing it while she speaks
interrupts her.

- :class:`EnterToTalk` is the terminal's key: press Enter to start talking,
  Enter again to stop (a terminal reports no key releases).
- :class:`ScheduledTalk` holds it over given stream-time intervals, to drive
  push-to-talk on the virtual device (e.g. while each WAV utterance plays).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, TextIO


class TalkKey(Protocol):
    def held(self, time: float) -> bool:
        """Whether the key is held at stream time ``time``."""
        ...


class EnterToTalk:
    """Enter toggles talking; read from ``stream`` on a daemon thread."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdin
        self._held = False
        self.closed = threading.Event()
        threading.Thread(target=self._read, name="push-to-talk", daemon=True).start()

    def held(self, time: float) -> bool:
        return self._held

    def _read(self) -> None:
        while self._stream.readline():
            self._held = not self._held
        self._held = False
        self.closed.set()


class ScheduledTalk:
    """Held over ``intervals`` (stream seconds), widened by ``before``/``after``.

    ``intervals`` may be a function, read at each call (e.g. the virtual
    device's :attr:`~companion.voice.devices.VirtualDevice.placed`).
    """

    def __init__(
        self,
        intervals: Sequence[tuple[float, float]] | Callable[[], Sequence[tuple[float, float]]],
        *,
        before: float = 0.0,
        after: float = 0.0,
    ) -> None:
        self._intervals = intervals
        self.before = before
        self.after = after

    def held(self, time: float) -> bool:
        spans = self._intervals() if callable(self._intervals) else self._intervals
        return any(a - self.before <= time < b + self.after for a, b in spans)
