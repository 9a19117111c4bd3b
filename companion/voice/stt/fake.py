"""A scripted recognizer for tests: :class:`FakeSTT`."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from companion.voice.audio import Audio
from companion.voice.base import Transcript


class FakeSTT:
    """Returns the scripted ``transcripts`` in order, one per call, then "".

    Every call's audio length in seconds is recorded in :attr:`seconds`; safe to
    call from several threads.
    """

    name = "fake"

    def __init__(self, transcripts: Iterable[str] = ()) -> None:
        self._script = list(transcripts)
        self.seconds: list[float] = []
        self._lock = threading.Lock()

    def enqueue(self, *texts: str) -> None:
        """Script more transcripts after those already queued."""
        with self._lock:
            self._script.extend(texts)

    def transcribe(self, audio: Audio) -> Transcript:
        with self._lock:
            self.seconds.append(audio.seconds)
            text = self._script.pop(0) if self._script else ""
        return Transcript(text, audio.seconds)
