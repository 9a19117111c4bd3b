"""Audio devices: the speaker queue they share, and the virtual device (WAV in and out).

The sound card is in :mod:`companion.voice.soundcard`. Both implement
:class:`~companion.voice.base.AudioDevice` with the same speaker queue:
:meth:`play` queues a clip, and each block of the stream takes the next
``block`` samples of it, so every :class:`~companion.voice.base.Frame` pairs the
microphone block with exactly what the speaker played meanwhile.

- :class:`VirtualDevice` (``companion voice --input-wav``) plays WAV
  utterances into a simulated microphone in real time (or faster), optionally
  with a speaker-to-microphone echo, and records both tracks.
- :class:`~companion.voice.soundcard.SoundDeviceDuplex` is one full-duplex
  sounddevice stream.

One thread consumes :meth:`frames` (the listener); :meth:`play` and
:meth:`stop_playback` may be called from another (the speaker).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.voice.audio import MIC_RATE, Audio, Samples, write_wav
from companion.voice.base import Frame, Playback

#: What to tell a user without a working microphone.
TRY_VIRTUAL = "try: companion voice --input-wav FILE --output-dir DIR"


class _Clip:
    """A queued clip: the :class:`~companion.voice.base.Playback` handle."""

    def __init__(self, samples: Samples, rate: int) -> None:
        self.samples = samples
        self.rate = rate
        self.pos = 0
        self.dropped = False

    @property
    def done(self) -> bool:
        return self.dropped or self.pos >= len(self.samples)

    @property
    def played_seconds(self) -> float:
        return self.pos / self.rate


class SpeakerQueue:
    """The playback queue shared by both devices; every method is thread-safe."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._queue: deque[_Clip] = deque()
        #: Whether the last :meth:`pull` found a clip to play (even a silent one).
        self.active = False

    def play(self, audio: Audio) -> Playback:
        clip = _Clip(audio.resampled(self.rate).samples.astype(np.float32, copy=False), self.rate)
        with self._lock:
            self._queue.append(clip)
        return clip

    def stop(self) -> None:
        with self._lock:
            for clip in self._queue:
                clip.dropped = True
            self._queue.clear()

    @property
    def playing(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def pull(self, n: int) -> Samples:
        """The next ``n`` samples to play (zeros where nothing is queued)."""
        out = np.zeros(n, dtype=np.float32)
        filled = 0
        with self._lock:
            self.active = bool(self._queue)
            while filled < n and self._queue:
                clip = self._queue[0]
                take = min(n - filled, len(clip.samples) - clip.pos)
                out[filled : filled + take] = clip.samples[clip.pos : clip.pos + take]
                clip.pos += take
                filled += take
                if clip.pos >= len(clip.samples):
                    self._queue.popleft()
        return out


def _echo_path(rate: int, delay_ms: float, decay_ms: float, seed: int) -> Samples:
    """Impulse response of the simulated speaker-to-microphone path: a direct
    sound after ``delay_ms``, then (with ``decay_ms`` > 0) sparse reflections
    decaying with that time constant."""
    delay = round(delay_ms * rate / 1000)
    if decay_ms <= 0:
        ir = np.zeros(delay + 1, dtype=np.float32)
        ir[delay] = 1.0
        return ir
    tail = round(3 * decay_ms * rate / 1000)
    ir = np.zeros(delay + tail + 1, dtype=np.float32)
    ir[delay] = 1.0
    rng = np.random.default_rng(seed)
    taps = rng.integers(delay + 1, len(ir), size=max(4, tail // 200))
    t = (taps - delay) / rate
    reflections = np.zeros_like(ir)
    reflections[taps] += rng.choice([-1.0, 1.0], size=len(taps)) * np.exp(-t * 1000 / decay_ms)
    # The reflections together carry a quarter of the direct sound's energy.
    ir += 0.5 * reflections / np.linalg.norm(reflections)
    return ir


@dataclass(frozen=True, slots=True)
class OverReply:
    """An input of :class:`VirtualDevice` spoken over her reply: it starts ``after_s``
    seconds after the speaker began playing the reply to the input before it (a
    barge-in at a point in the reply, wherever the reply happens to start)."""

    after_s: float
    audio: Audio


class VirtualDevice:
    """A duplex device made of clips: utterances go into the "microphone", replies are recorded.

    ``inputs`` are clips (any rate), each either an :class:`Audio`, placed
    ``gaps_s`` after the previous turn (see below), a ``(start_s, Audio)``
    pair placed at that stream time (so a test can talk over a reply), or an
    :class:`OverReply`, placed that long after the reply to the previous input
    began to play (a reply that has not begun ``reply_timeout_s`` after that
    input counts as one that began then). The first plain clip starts after
    ``lead_in_s``.

    Turn taking (``turn_taking=True``): a plain clip waits until the reply to
    the previous one has played and the speaker has been silent for ``gaps_s``
    (a reply that has not begun ``reply_timeout_s`` after the turn counts as
    one that ended then). Without turn taking it
    starts ``gaps_s`` after the previous clip ends, reply or not. ``gaps_s``
    may be one number or one per clip after the first.

    The stream is paced by the wall clock, ``speed`` times real time
    (``math.inf``: as fast as the consumer reads). All bookkeeping is in stream
    time, so latencies measured on it are stream seconds at any speed. It ends
    once every clip was heard and the last reply has played, followed by
    ``tail_s`` of silence (with no inputs: ``tail_s`` after the last sound).

    ``echo_gain`` > 0 mixes what the speaker played back into the microphone
    after ``echo_delay_ms`` (with ``echo_decay_ms`` > 0, through a small room
    of decaying reflections); ``noise`` adds white noise of that RMS.

    ``rate``: the rate the device forces on its user (16 kHz unless set);
    ``record=False`` keeps no tracks (for streams of hours).

    With ``output_dir``, :meth:`close` writes ``mic.wav`` (what the microphone
    heard, echo included) and ``speaker.wav`` (everything played, continuous).
    :attr:`placed` holds each input's (start, end) stream times,
    :attr:`plays` and :attr:`stops` the stream times of :meth:`play` and
    :meth:`stop_playback` calls.
    """

    def __init__(
        self,
        inputs: Sequence[Audio | tuple[float, Audio] | OverReply],
        *,
        gaps_s: float | Sequence[float] = 1.0,
        lead_in_s: float = 0.5,
        tail_s: float = 2.0,
        turn_taking: bool = True,
        reply_timeout_s: float = 30.0,
        output_dir: Path | str | None = None,
        block: int = 512,
        speed: float = 1.0,
        echo_gain: float = 0.0,
        echo_delay_ms: float = 30.0,
        echo_decay_ms: float = 0.0,
        noise: float = 0.0,
        seed: int = 0,
        rate: int = MIC_RATE,
        record: bool = True,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.rate = rate
        self._record = record
        self.block = block
        self.speed = speed
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self._inputs: list[tuple[float | None, Samples]] = []
        #: Where an input is an OverReply: its delay after the reply starts, in samples.
        self._over: dict[int, int] = {}
        for item in inputs:
            if isinstance(item, OverReply):
                self._over[len(self._inputs)] = round(item.after_s * self.rate)
                at, clip = None, item.audio
            else:
                at, clip = item if isinstance(item, tuple) else (None, item)
            self._inputs.append((at, clip.resampled(self.rate).samples))
        n_gaps = max(len(self._inputs) - 1, 0)
        gaps = [float(gaps_s)] * n_gaps if isinstance(gaps_s, int | float) else list(gaps_s)
        if len(gaps) < n_gaps:
            raise ValueError(f"gaps_s has {len(gaps)} values for {n_gaps} gaps")
        self._gaps = [round(g * self.rate) for g in gaps]
        self._lead = round(lead_in_s * self.rate)
        self._tail = round(tail_s * self.rate)
        self._reply_timeout = round(reply_timeout_s * self.rate)
        self.turn_taking = turn_taking
        self._speaker = SpeakerQueue(self.rate)
        self._echo_gain = echo_gain
        self._ir = _echo_path(self.rate, echo_delay_ms, echo_decay_ms, seed)
        self._noise = noise
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._written = False
        self._mic_track: list[Samples] = []
        self._speaker_track: list[Samples] = []
        self.placed: list[tuple[float, float]] = []
        self.plays: list[float] = []
        self.stops: list[float] = []
        self._n = 0  # samples delivered so far

    # -- the speaker side (any thread) --------------------------------------

    @property
    def time(self) -> float:
        """Stream time now: the end of the last block delivered."""
        return self._n / self.rate

    def play(self, audio: Audio) -> Playback:
        with self._lock:
            self.plays.append(self.time)
        return self._speaker.play(audio)

    def stop_playback(self) -> None:
        with self._lock:
            self.stops.append(self.time)
        self._speaker.stop()

    @property
    def playing(self) -> bool:
        return self._speaker.playing

    # -- the microphone side (one thread) -----------------------------------

    def frames(self) -> Iterator[Frame]:
        sched = _Schedule(self)
        history = np.zeros(len(self._ir) - 1, dtype=np.float32)
        start = time.monotonic()
        k = 0
        while not self._closed.is_set():
            if math.isfinite(self.speed):
                due = start + (k + 1) * self.block / self.rate / self.speed
                if self._closed.wait(max(0.0, due - time.monotonic())):
                    break
            t0 = self._n
            with self._lock:
                played = self._speaker.pull(self.block)
                mic = sched.mic_block(t0, self.block, active=self._speaker.active)
            if self._echo_gain > 0:
                both = np.concatenate([history, played])
                mic += self._echo_gain * np.convolve(both, self._ir, mode="valid").astype(
                    np.float32
                )
                history = both[len(both) - len(history) :] if len(history) else history
            if self._noise > 0:
                mic += self._rng.normal(0.0, self._noise, self.block).astype(np.float32)
            if self._record:
                self._mic_track.append(mic)
                self._speaker_track.append(played)
            self._n += self.block
            k += 1
            yield Frame(mic, played, t0 / self.rate)
            if sched.finished(self._n):
                break

    def close(self) -> None:
        """Stop the stream and (once) write ``mic.wav`` and ``speaker.wav``."""
        self._closed.set()
        self._speaker.stop()
        if self.output_dir is None or self._written:
            return
        self._written = True
        empty = np.zeros(0, dtype=np.float32)
        mic = np.concatenate(self._mic_track) if self._mic_track else empty
        spk = np.concatenate(self._speaker_track) if self._speaker_track else empty
        write_wav(self.output_dir / "mic.wav", Audio(mic, self.rate))
        write_wav(self.output_dir / "speaker.wav", Audio(spk, self.rate))

    def __enter__(self) -> VirtualDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Schedule:
    """Where each input lands in the stream, decided block by block (turn taking
    depends on when the replies play)."""

    def __init__(self, device: VirtualDevice) -> None:
        self.d = device
        self.next = 0  # index of the next input to place
        self.live: list[tuple[int, Samples]] = []  # placed inputs not yet over
        self.turn_end = 0  # end sample of the last plain input placed
        self.replied = False  # the speaker played something since turn_end
        self.reply_at = 0  # sample where it began to
        self.idle_since = 0  # sample where the speaker last went quiet

    def mic_block(self, t0: int, n: int, *, active: bool) -> Samples:
        if active:
            self.idle_since = t0 + n
            if self.next > 0 and t0 >= self.turn_end and not self.replied:
                self.replied = True
                self.reply_at = t0
        self._place(t0)
        out = np.zeros(n, dtype=np.float32)
        for start, clip in self.live:
            a, b = max(start, t0), min(start + len(clip), t0 + n)
            if a < b:
                out[a - t0 : b - t0] += clip[a - start : b - start]
        self.live = [(s, c) for s, c in self.live if s + len(c) > t0 + n]
        return out

    def _wait_over(self, t0: int, quiet: int) -> bool:
        """The reply to the last turn has played and ``quiet`` samples of silence followed."""
        if t0 < self.turn_end:
            return False
        if self.replied:
            return t0 - self.idle_since >= quiet
        # No reply: count it as one that ended reply_timeout after the turn.
        return t0 - self.turn_end >= self.d._reply_timeout + quiet

    def _place(self, t0: int) -> None:
        d = self.d
        while self.next < len(d._inputs):
            at, clip = d._inputs[self.next]
            if at is not None:
                start = round(at * d.rate)
            elif self.next in d._over:
                if self.replied:
                    start = self.reply_at + d._over[self.next]
                else:  # no reply yet: one that has not begun by the timeout began then
                    start = self.turn_end + d._reply_timeout + d._over[self.next]
            elif self.next == 0:
                start = d._lead
            else:
                gap = d._gaps[self.next - 1]
                if d.turn_taking:
                    if not self._wait_over(t0, gap):
                        return
                    start = t0
                else:
                    start = self.turn_end + gap
            if start >= t0 + d.block:
                return
            start = max(start, t0)
            self.live.append((start, clip))
            d.placed.append((start / d.rate, (start + len(clip)) / d.rate))
            self.turn_end = max(self.turn_end, start + len(clip))
            self.replied = False
            self.next += 1

    def finished(self, now: int) -> bool:
        if self.next < len(self.d._inputs) or self.live or self.d.playing:
            return False
        if not self.d._inputs:  # a speaker only: ends tail_s after the last sound
            return now - self.idle_since >= self.d._tail
        return self._wait_over(now, self.d._tail)
