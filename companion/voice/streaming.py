"""Recognition while the user speaks: :class:`StreamingRecognizer`.

One worker thread runs the recognizer on the turn so far, so the voice loop's
thread never waits for it while audio flows:

- :meth:`StreamingRecognizer.partial` transcribes the growing buffer (the loop
  calls it every ``every_s`` of new speech; skipped while the worker is busy),
  keeping :attr:`StreamingRecognizer.text`, the latest partial transcript, for
  speculation;
- :meth:`StreamingRecognizer.final` starts the transcript of the turn as it
  would end now (at the first short silence), as a :class:`Job` the loop
  collects when the end of the turn is confirmed, or drops when the user goes on.

With Whisper on a short window (about 0.1-0.2 s a turn on one thread) the
final transcript is ready by the time the end-of-turn model has spoken. The
worker runs one job at a time on the recognizer's own threads (one: the other
core is the language model's).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from companion.voice.audio import Audio
from companion.voice.base import STT


@dataclass(eq=False)
class Job:
    """One transcription: ``audio`` in, :meth:`wait` for its text."""

    audio: Audio
    final: bool
    _done: threading.Event = field(default_factory=threading.Event)
    _text: str = ""
    _error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> str | None:
        """The transcript, or None if not ready within ``timeout``; re-raises the
        recognizer's error."""
        if not self._done.wait(timeout):
            return None
        if self._error is not None:
            raise self._error
        return self._text


class StreamingRecognizer:
    """Runs ``stt`` on a worker thread, one :class:`Job` at a time."""

    def __init__(self, stt: STT, *, every_s: float = 0.7) -> None:
        self.stt = stt
        self.every_s = every_s
        #: The latest partial transcript of the turn in progress ("" at its start).
        self.text = ""
        #: Transcriptions run: partial and final (for the figures).
        self.partials = 0
        self.finals = 0
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._busy = threading.Event()
        self._worker = threading.Thread(target=self._run, name="stt-stream", daemon=True)
        self._worker.start()

    def reset(self) -> None:
        """A new turn: forget the partial transcript."""
        self.text = ""

    def partial(self, audio: Audio) -> bool:
        """Transcribe the turn so far, unless the worker is busy; returns if it was queued."""
        if self._busy.is_set():
            return False
        self._submit(Job(audio, final=False))
        return True

    def final(self, audio: Audio) -> Job:
        """Start the transcript of ``audio`` (the turn as it would end now)."""
        job = Job(audio, final=True)
        self._submit(job)
        return job

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join(5.0)

    def _submit(self, job: Job) -> None:
        self._busy.set()
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job._text = self.stt.transcribe(job.audio).text.strip()
            except Exception as exc:  # handed to the waiting thread by Job.wait
                job._error = exc
            if job.final:
                self.finals += 1
            else:
                self.partials += 1
                if job._error is None:
                    self.text = job._text
            job._done.set()
            if self._jobs.empty():
                self._busy.clear()
