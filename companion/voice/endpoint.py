"""End-of-turn detection: cut a microphone stream into utterances.

:class:`Endpointer` takes blocks of any size (re-chunked to the VAD's frames),
scores each frame with a :class:`~companion.voice.base.VAD`, and reports

- :class:`SpeechStart` once ``start_ms`` of consecutive speech frames are heard
  (the event's ``time`` is when the first of them began), and
- :class:`Utterance` once ``end_silence_ms`` of silence follow the speech: the
  audio from ``pre_roll_ms`` before the start to a little after the end, with
  ``ended`` the stream time the speech actually stopped.

Latency it adds: a turn is reported ``end_silence_ms`` (default 600 ms) plus at
most one frame (32 ms) after the user stops speaking: that is the end-of-turn
cost in the voice loop's latency budget. The onset is reported ``start_ms``
(default 96 ms) after speech begins. Pauses shorter than ``end_silence_ms``
inside a turn do not end it: on 14 two- and three-sentence turns spoken by
Piper and espeak-ng, 300 ms split 6 of them, 500 ms one, 600 ms none. People
pause longer than synthesizers: raise it for slow speakers.

With a :class:`~companion.voice.turn.TurnModel` (Smart Turn), ``turn_checks``
say when to ask it: at each ``(silence_ms, threshold)`` the model is asked
whether the speech so far sounds finished, and a probability of at least
``threshold`` ends the turn there; otherwise the turn ends after
``end_silence_ms``, the silence rule that is also the fallback without a model.
:data:`~companion.voice.turn.TURN_PLANS` holds the plans the voice loop uses
(and bench/turn_taking.py's figures for them). Two more events help the voice
loop overlap its stages:
:class:`Pause` once ``pause_ms`` of silence follow speech (the last words are
probably said: transcribe now) and :class:`Resume` when speech comes back
after a Pause (throw that away).

For barge-in, feed the microphone (after echo handling) to a second Endpointer
with a longer ``start_ms`` (e.g. 200 ms, so a cough or echo residue does not
stop the reply) and stop playback on its :class:`SpeechStart`, or poll
:attr:`Endpointer.speaking`.
"""

from __future__ import annotations

import time as _time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from companion.voice.audio import MIC_RATE, Audio, Samples
from companion.voice.base import VAD
from companion.voice.turn import TurnModel


@dataclass(frozen=True, slots=True)
class SpeechStart:
    """Speech began at stream time ``time`` (reported ``start_ms`` later)."""

    time: float


@dataclass(frozen=True, slots=True, eq=False)
class Utterance:
    """One turn of speech (16 kHz): pre-roll before ``started``, a short tail after ``ended``
    (``pause_ms`` when the turn ended on its :class:`Pause`, whose audio it is)."""

    audio: Audio
    #: Stream time the speech began.
    started: float
    #: Stream time the speech stopped (not when the silence timer fired).
    ended: float
    #: Cut at ``max_utterance_s`` while the user was still speaking.
    truncated: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Pause:
    """``pause_ms`` of silence followed speech that stopped at ``ended``: ``audio`` is
    the utterance so far, as :class:`Utterance` would hold it if the turn ended now."""

    audio: Audio
    started: float
    ended: float


@dataclass(frozen=True, slots=True)
class Resume:
    """Speech came back at ``time`` after a :class:`Pause`: the turn goes on."""

    time: float


@dataclass(frozen=True, slots=True)
class TurnVerdict:
    """What the turn model said after a short silence (for the figures)."""

    time: float
    probability: float
    seconds: float  # how long the model took


Event = SpeechStart | Utterance | Pause | Resume | TurnVerdict


class Endpointer:
    """Segments a 16 kHz stream into :class:`Utterance` events with a :class:`VAD`.

    A frame is speech when its probability is at least ``threshold``; once in
    speech, it takes frames below ``threshold - 0.15`` to count as silence
    (hysteresis, as Silero's own segmenter does).
    """

    def __init__(
        self,
        vad: VAD,
        *,
        threshold: float = 0.5,
        start_ms: float = 96.0,
        end_silence_ms: float = 600.0,
        pre_roll_ms: float = 300.0,
        post_roll_ms: float = 150.0,
        max_utterance_s: float = 30.0,
        rate: int = MIC_RATE,
        turn: TurnModel | None = None,
        turn_checks: Sequence[tuple[float, float]] = ((200.0, 0.5),),
        pause_ms: float = 64.0,
    ) -> None:
        if rate != MIC_RATE:
            raise ValueError(f"Endpointer works at {MIC_RATE} Hz; resample the stream first")
        self.vad = vad
        self.rate = rate
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        n = vad.frame_samples
        self._frame_s = n / rate
        self._start_frames = max(1, round(start_ms / 1000 / self._frame_s))
        self._end_frames = max(1, round(end_silence_ms / 1000 / self._frame_s))
        self._pre_frames = round(pre_roll_ms / 1000 / self._frame_s)
        self._post_frames = min(round(post_roll_ms / 1000 / self._frame_s), self._end_frames)
        self._max_frames = max(1, round(max_utterance_s / self._frame_s))
        self.turn = turn
        #: Silent frames at which the turn model is asked -> the probability that ends the turn.
        self._checks: dict[int, float] = {}
        for ms, threshold in turn_checks:
            frames = min(max(1, round(ms / 1000 / self._frame_s)), self._end_frames)
            self._checks[frames] = min(threshold, self._checks.get(frames, threshold))
        first = min(self._checks, default=self._end_frames)
        self._pause_frames = min(max(1, round(pause_ms / 1000 / self._frame_s)), first)
        #: Probability of the last frame scored.
        self.probability = 0.0
        self.reset()

    @property
    def end_silence_s(self) -> float:
        """The end-of-turn cost: silence needed before an utterance is reported."""
        return self._end_frames * self._frame_s

    @property
    def speaking(self) -> bool:
        """Whether the user is speaking now (after the onset, until the silence timer fires)."""
        return self._speech is not None

    def reset(self, time: float | None = None) -> None:
        """Drop any partial utterance and the VAD state; the next block starts at ``time``."""
        self.vad.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._t = time  # stream time of the first pending sample
        self._history: deque[Samples] = deque(maxlen=self._pre_frames + self._start_frames)
        self._run = 0  # consecutive speech frames while idle
        self._speech: list[Samples] | None = None  # frames of the utterance in progress
        self._started = 0.0
        self._silent = 0  # consecutive silent frames while in speech
        self._paused = False  # a Pause was reported for this silence
        self._pause_audio = Audio(np.zeros(0, dtype=np.float32), self.rate)

    def push(self, samples: Samples, time: float | None = None) -> list[Event]:
        """Feed the next block (any length); ``time`` is its stream time (Frame.time).

        Without ``time`` blocks are taken as contiguous from 0 s. Returns the
        events the block completed, in order.
        """
        if time is not None and len(self._pending) == 0:
            self._t = time
        elif self._t is None:
            self._t = 0.0
        data = samples.astype(np.float32, copy=False)
        if len(self._pending):
            data = np.concatenate([self._pending, data])
        n = self.vad.frame_samples
        whole = len(data) // n * n
        events: list[Event] = []
        for i in range(0, whole, n):
            events.extend(self._frame(data[i : i + n].copy(), self._t))
            self._t += self._frame_s
        self._pending = data[whole:].copy()
        return events

    def flush(self) -> list[Event]:
        """End of stream: report the utterance in progress, if any, as ended now."""
        if self._speech is None:
            return []
        assert self._t is not None
        return [self._finish(self._t - self._silent * self._frame_s, truncated=False)]

    def _frame(self, frame: Samples, t: float) -> list[Event]:
        p = self.probability = self.vad(frame)
        if self._speech is None:
            self._history.append(frame)
            self._run = self._run + 1 if p >= self.threshold else 0
            if self._run < self._start_frames:
                return []
            # Onset: the run began _start_frames - 1 frames before this one.
            self._started = t - (self._start_frames - 1) * self._frame_s
            self._speech = list(self._history)
            self._pre = len(self._speech) - self._start_frames
            self._silent = 0
            self._run = 0
            self._history.clear()
            return [SpeechStart(self._started)]
        self._speech.append(frame)
        self._silent = self._silent + 1 if p < self.neg_threshold else 0
        end = t + self._frame_s
        ended = end - self._silent * self._frame_s
        if self._silent == 0 and self._paused:
            self._paused = False
            return [Resume(t)]
        if self._silent >= self._end_frames:
            return [self._finish(ended, truncated=False)]
        if len(self._speech) - self._pre >= self._max_frames:
            return [self._finish(ended, truncated=True)]
        events: list[Event] = []
        if self._silent == self._pause_frames:
            self._paused = True
            self._pause_audio = self._audio()
            events.append(Pause(self._pause_audio, self._started, ended))
        threshold = self._checks.get(self._silent)
        if threshold is not None and self.turn is not None:
            clock = _time.perf_counter()
            probability = self.turn(np.concatenate(self._speech))
            events.append(TurnVerdict(end, probability, _time.perf_counter() - clock))
            if probability >= threshold:
                events.append(self._finish(ended, truncated=False))
        return events

    def current_audio(self) -> Audio | None:
        """The utterance in progress so far (None while idle)."""
        return self._audio() if self._speech is not None else None

    def _audio(self) -> Audio:
        """The utterance in progress as it would be cut now."""
        assert self._speech is not None
        keep = len(self._speech) - self._silent + self._post_frames
        return Audio(np.concatenate(self._speech[:keep]), self.rate)

    def _finish(self, ended: float, *, truncated: bool) -> Utterance:
        assert self._speech is not None
        # the turn as it was at its pause (already being transcribed), when it ends there
        audio = self._pause_audio if self._paused else self._audio()
        utterance = Utterance(audio, self._started, ended, truncated)
        # The frames just heard are the pre-roll of a turn that starts at once.
        self._history.extend(self._speech[-(self._history.maxlen or 1) :])
        self._speech = None
        self._silent = 0
        self._paused = False
        return utterance
