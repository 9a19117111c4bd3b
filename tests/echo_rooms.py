"""Simulated rooms for echo handling, with real speech: shared by tests/test_voice_echo.py
and bench/echo.py.

Her voice is Piper reading a reply (about 14 s), the user is espeak-ng (another
voice), both cached by :mod:`voicedata`. A :class:`Room` is a speaker-to-microphone
path (gain, delay, a small room of reflections, optionally a delay that drifts or
a loudspeaker that saturates) and where the user talks over her. :func:`measure`
runs one :class:`~companion.voice.echo.EchoGuard` over her echo alone and then
with the user, and replays the voice loop's barge-in decisions on its output
(the :class:`~companion.voice.endpoint.Endpointer`, Silero VAD when installed):
a speech start while she plays is a barge-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from voicedata import speech

from companion.voice.audio import MIC_RATE, Samples
from companion.voice.base import Frame
from companion.voice.devices import _echo_path
from companion.voice.echo import Aec, EchoGate, EchoGuard, GateDecision
from companion.voice.endpoint import Endpointer, SpeechStart
from companion.voice.vad import load_vad

R = MIC_RATE
HER = ("I have been thinking about your garden all week. The tomatoes should go in the "
       "sunny corner by the fence. Basil likes to grow right beside them, you know. "
       "And in the autumn we could plant garlic for next year. What do you think about that?")
USER = "Wait, what about the potatoes? I planted some last spring."
FRAME = 512  # the virtual device's block
NOISE = 0.0005  # -66 dBFS of white noise in the room
USER_RMS = 0.05  # -26 dBFS: as loud as her echo at gain 0.5


@dataclass(frozen=True)
class Room:
    name: str
    gain: float = 0.5
    delay_ms: float = 40.0
    decay_ms: float = 40.0
    #: The delay grows by this much over her reply (clock drift, a resync).
    drift_ms: float = 0.0
    #: Loudspeaker saturation (tanh drive; 0: linear).
    drive: float = 0.0
    user_rms: float = USER_RMS
    user_at: float = 6.0


ROOMS = [
    Room("headphones (no echo)", gain=0.0),
    Room("0 ms", delay_ms=0.0),
    Room("40 ms"),
    Room("100 ms", delay_ms=100.0),
    Room("200 ms", delay_ms=200.0),
    Room("drift 100-101 ms (70 ppm)", delay_ms=100.0, drift_ms=1.0),
    Room("drift 100-130 ms", delay_ms=100.0, drift_ms=30.0),
    Room("weak echo (0.1)", gain=0.1),
    Room("loud echo (1.0)", gain=1.0, delay_ms=60.0),
    Room("distorting speaker", gain=0.7, delay_ms=60.0, drive=3.0),
    Room("quiet user (-20 dB)", gain=1.0, delay_ms=60.0, user_rms=0.1 * 0.1),
    Room("early barge-in (1 s)", delay_ms=100.0, user_at=1.0),
]


def echo_of(her: Samples, room: Room) -> Samples:
    """What the microphone hears of ``her`` in ``room`` (same length)."""
    x = np.tanh(room.drive * her) / np.tanh(room.drive) if room.drive else her
    wet = np.convolve(x, _echo_path(R, room.delay_ms, room.decay_ms, seed=1))[: len(x)]
    if room.drift_ms:  # read it ever later, at 8 times the rate (so the reading is smooth)
        up = 8
        fine = np.fft.irfft(np.fft.rfft(wet), up * len(wet)) * up
        n = np.arange(len(fine), dtype=np.float64)
        lag = room.drift_ms * R * up / 1000 * n / len(fine)
        fine = np.interp(n - lag, n, fine, left=0.0)
        wet = np.fft.irfft(np.fft.rfft(fine)[: len(wet) // 2 + 1], len(wet)) / up
    return (room.gain * wet).astype(np.float32)


def onset(clip: Samples) -> int:
    """The user's first sound: the first 10 ms within 30 dB of the loudest."""
    win = R // 100
    rms = np.sqrt(np.mean(clip[: len(clip) // win * win].reshape(-1, win) ** 2, axis=1))
    return int(np.argmax(rms > rms.max() / 31.6)) * win


@dataclass
class Run:
    residual: Samples  # the canceller's output (before the gate), aligned to the microphone
    listener: Samples  # what the listener got, aligned to the microphone
    starts: list[tuple[float, float]]  # (decided at, speech began at) per speech start
    cpu: float  # seconds of CPU in the guard
    guard: EchoGuard


class _Tap(EchoGate):
    """The gate, keeping what the canceller gave it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Samples] = []

    def decide(self, residual: Samples, ref: Samples) -> GateDecision:
        self.seen.append(residual.copy())
        return super().decide(residual, ref)


def run(aec: Aec, played: Samples, mic_of: Callable[[Samples], Samples], *, stop: bool = False,
        ns: bool = False) -> Run:
    """Her ``played`` through a new guard, frame by frame as the device gives them, with
    ``mic_of(played)`` in the microphone. ``stop``: a speech start while she plays stops
    her there, as the voice loop does (her echo then dies away in the room)."""
    tap = _Tap()
    guard = EchoGuard(R, aec=aec, noise_suppression=ns, gate=tap)
    endpointer = Endpointer(load_vad("auto"))
    played = played.copy()
    mic = mic_of(played)
    out: list[Samples] = []
    first: float | None = None
    starts: list[tuple[float, float]] = []
    cpu = 0.0
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        frame = Frame(mic[i:i + FRAME], played[i:i + FRAME], i / R)
        playing = bool(played[i + FRAME:].any())
        t = time.process_time()
        samples, start = guard.process(frame, playing)
        cpu += time.process_time() - t
        if len(samples):
            first = start if first is None else first
            out.append(samples)
        for event in endpointer.push(samples, start):
            if isinstance(event, SpeechStart):
                starts.append(((i + FRAME) / R, event.time))
                if stop and playing:
                    played[i + FRAME:] = 0.0
                    mic = mic_of(played)
    lag = guard.latency
    res = np.concatenate(tap.seen)[lag:]
    lst = np.concatenate(out)
    skip = round(-(first or 0.0) * R)  # the listener's stream starts before 0 by the lag
    return Run(_fit(res, len(mic)), _fit(lst[skip:], len(mic)), starts, cpu, guard)


def _fit(x: Samples, n: int) -> Samples:
    return np.pad(x, (0, max(0, n - len(x))))[:n]


def _db(x: float) -> float:
    return float(10 * np.log10(max(x, 1e-20)))


def _ratio_db(num: float, den: float) -> float:
    """``num / den`` in dB; NaN without ``num`` (no echo to measure), inf without ``den``."""
    if num <= 0:
        return float("nan")
    return _db(num / den) if den > 0 else float("inf")


def _energy(x: np.ndarray[Any, Any]) -> float:
    return float(np.sum(np.square(x, dtype=np.float64)))


@dataclass
class Row:
    erle: float
    erle_first: float
    false: int
    cpu_ms: float
    echo_dt: float = float("nan")
    sdr: float = float("nan")
    barge_ms: float | None = None
    wer: float | None = None


def voices() -> tuple[Samples, Samples]:
    """Her reply and the user's sentence, at 16 kHz."""
    return speech(HER).resampled(R).samples, speech(USER, "espeak").resampled(R).samples


def measure(aec: Aec, room: Room, her: Samples, user: Samples, *,
            wer_of: Callable[[Samples], float] | None = None, ns: bool = False) -> Row:
    """Her echo alone, then the user over her, in ``room`` (see the module's columns)."""
    noise = np.random.default_rng(7).normal(0.0, NOISE, len(her)).astype(np.float32)
    echo = echo_of(her, room)
    # Her echo alone.
    alone = run(aec, her, lambda played: echo_of(played, room) + noise, ns=ns)
    a, b = 3 * R, len(her)
    erle = _ratio_db(_energy(echo[a:b]), _energy(alone.residual[a:b]))
    erle_first = _ratio_db(_energy(echo[:R]), _energy(alone.residual[:R]))
    false = len(alone.starts)
    cpu_ms = 1000 * alone.cpu / (len(her) / R)
    row = Row(erle, erle_first, false, cpu_ms)
    # The user over her, she going on: what is left of her echo in double talk.
    at = round(room.user_at * R)
    u = np.zeros_like(her)
    clip = user[: len(her) - at] * (room.user_rms / np.sqrt(np.mean(user**2)))
    u[at:at + len(clip)] = clip
    span = slice(at, at + len(clip))
    uu = u[span].astype(np.float64)
    both = run(aec, her, lambda played: echo_of(played, room) + noise + u, ns=ns)
    res = both.residual[span].astype(np.float64)
    left = res - (res @ uu) / (uu @ uu) * uu
    row.echo_dt = -_ratio_db(_energy(echo[span]), _energy(left))
    # The user over her, as in the voice loop: she stops at the barge-in.
    loop = run(aec, her, lambda played: echo_of(played, room) + noise + u, stop=True, ns=ns)
    user_onset = (at + onset(clip)) / R
    row.false += sum(1 for _, began in loop.starts if began < user_onset - 0.1)
    barge = [decided for decided, began in loop.starts if began >= user_onset - 0.1]
    row.barge_ms = 1000 * (barge[0] - user_onset) if barge else None
    lst = loop.listener[span].astype(np.float64)
    beta = (lst @ uu) / (uu @ uu)
    row.sdr = _ratio_db(_energy(beta * uu), _energy(lst - beta * uu))
    if wer_of is not None:
        pad = R // 4
        row.wer = wer_of(loop.listener[max(0, at - pad):at + len(clip) + pad])
    return row


