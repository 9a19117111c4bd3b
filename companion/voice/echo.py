"""Her own voice must not sound like the user: echo cancellation and a double-talk gate.

The microphone hears the user *and* what the speaker plays. Every
:class:`~companion.voice.base.Frame` carries what was played during the same
block (``frame.played``), the reference for these stages:

1. A canceller removes her echo. Two are here (``aec``, bench/echo.py compares them):

   - ``nlms``: :class:`~companion.voice.canceller.DelayEstimator` finds the bulk
     delay (GCC-PHAT) during her first second of speech, then
     :class:`~companion.voice.canceller.EchoCanceller`, a partitioned-block
     frequency-domain NLMS filter, learns the rest of the path and subtracts the
     echo it predicts, adapting only while the user is silent. Transparent in
     double talk (the user is heard within 150-180 ms over her), but slow to
     converge (seconds), and it cannot follow a distorting loudspeaker or a
     drifting delay.
   - ``webrtc``: WebRTC's AEC3 (:mod:`companion.voice.webrtc_aec`): 30-40 dB
     from her first second, through drift and distortion, but its suppressor
     holds back the first ~100 ms of the user over her (barge-in in 210-270 ms)
     and a user 20 dB under her echo.
   - ``auto`` (the default): NLMS, and AEC3 in its place where NLMS cannot bring
     her echo down (instead of half-duplex).

2. :class:`~companion.voice.gate.EchoGate`, a Geigel-style double-talk detector
   on what is left: it lets audio through to the listener only when the residual
   is clearly louder than her echo could be. Otherwise the listener hears silence.

:class:`EchoGuard` runs both and owns the fallback policy: when echo handling
cannot work (the device gives no reference while playing, or no canceller can
bring the echo down), it switches to half-duplex (the microphone is ignored
while she speaks, so she cannot be interrupted by voice) and says so once in
:attr:`EchoGuard.notice`. With headphones (her voice never reaches the
microphone) AEC3 is bypassed, since it would hold back the user for an echo
that is not there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from companion.voice.audio import Samples
from companion.voice.base import Frame
from companion.voice.canceller import BLOCK, Canceller, DelayEstimator, EchoCanceller
from companion.voice.gate import EchoGate, GateDecision, to_db
from companion.voice.webrtc_aec import INSTALL_HINT, WebRtcCanceller, webrtc_available

#: Which canceller runs: "nlms" (this package's own), "webrtc" (AEC3), or "auto"
#: (the default): NLMS, and AEC3 instead of half-duplex where NLMS cannot bring
#: her echo down (a distorting loudspeaker, a drifting delay). See bench/echo.py.
Aec = Literal["auto", "webrtc", "nlms"]

_EPS = 1e-10

__all__ = ["Aec", "EchoGate", "EchoGuard", "EchoReport", "GateDecision"]


NO_REFERENCE = "the audio device does not report what it plays"


@dataclass(frozen=True, slots=True)
class EchoReport:
    """Figures for ``companion doctor``-style reporting and the benchmark."""

    #: Echo return loss enhancement: how much the canceller reduced her echo (dB).
    erle_db: float
    #: Residual echo relative to what she played (dB; lower is better).
    residual_gain_db: float
    #: Blocks let through to the listener while she played: the user talking over
    #: her, or (when only she spoke) false alarms.
    user_blocks: int
    half_duplex: bool


class EchoGuard:
    """Turns duplex frames into what the listener should hear.

    ``process(frame, playing)`` returns the microphone samples with her echo
    removed, or silence where only her echo was heard, with the stream time of
    the first returned sample. Output lags input by two blocks (32 ms), so that
    when the gate opens on the user's voice the onset it held back is passed on
    too. In half-duplex mode the microphone is silenced whenever she plays (and
    for ``tail`` seconds after), and :attr:`barge_in` is False.
    """

    def __init__(
        self,
        rate: int,
        *,
        half_duplex: bool = False,
        cancel: bool = True,
        aec: Aec = "auto",
        noise_suppression: bool = False,
        gate: EchoGate | None = None,
        tail: float = 0.3,
        warmup_seconds: float = 3.0,
        max_residual_db: float = -8.0,
    ) -> None:
        self.rate = rate
        self.half_duplex = half_duplex
        self.notice = ""
        if aec not in ("auto", "webrtc", "nlms"):
            raise ValueError(f"unknown echo canceller {aec!r}: use auto, webrtc or nlms")
        if aec == "webrtc" and not webrtc_available():
            aec = "nlms"
            self.notice = ("pywebrtc-audio is not installed: using the built-in echo "
                           f"canceller ({INSTALL_HINT})")
        # In auto mode, AEC3 may take over from NLMS (once).
        self._may_switch = aec == "auto" and cancel
        self._ns = noise_suppression
        #: The canceller that runs ("webrtc" or "nlms"; None with ``cancel=False``).
        self.aec: Literal["webrtc", "nlms"] | None = None
        self.canceller: Canceller | None = None
        if cancel and aec == "webrtc":
            self.aec = "webrtc"
            self.canceller = WebRtcCanceller(rate, block=BLOCK,
                                             noise_suppression=noise_suppression)
        elif cancel:
            self.aec = "nlms"
            self.canceller = EchoCanceller()
        # The output of the canceller lags its input by this many samples.
        self._lag = self.canceller.latency if self.canceller is not None else 0
        self.gate = gate or EchoGate()
        self.delay = DelayEstimator(rate)
        #: The reference is delayed by this many samples before the canceller and gate.
        self.bulk = 0
        # The reference and microphone delayed to line up with the canceller's output.
        self._ref_line = np.zeros(self._lag, dtype=np.float32)
        self._mic_line = np.zeros(self._lag, dtype=np.float32)
        self._tail_blocks = max(1, round(tail * rate / BLOCK))
        self._since_played = self._tail_blocks
        self._mic = np.zeros(0, dtype=np.float32)
        self._ref = np.zeros(0, dtype=np.float32)
        self._time = 0.0  # stream time of the first sample in _mic
        self._line: deque[tuple[Samples, float, bool]] = deque()  # (block, time, pass it)
        self._delay = 2
        self._warmup_blocks = round(warmup_seconds * rate / BLOCK)
        self._max_gain_db = max_residual_db
        self._echo_blocks = 0
        self._mic_energy = 0.0
        self._res_energy = 0.0
        self._silent_ref_blocks = 0
        self.last = GateDecision(False, False, False, -100.0, -100.0, False)
        self.resets = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=round(0.5 * rate / BLOCK))
        # Whether her voice was heard in the microphone, per block she spoke alone.
        self._echo_heard: deque[bool] = deque(maxlen=round(2.0 * rate / BLOCK))
        #: Blocks passed to the listener while she was playing (the user talking over her).
        self.user_blocks = 0

    @property
    def latency(self) -> int:
        """Samples the canceller's output lags the microphone by (the returned
        stream time already accounts for it)."""
        return self._lag

    @property
    def barge_in(self) -> bool:
        """Whether the user can interrupt her by speaking."""
        return not self.half_duplex

    def process(self, frame: Frame, playing: bool) -> tuple[Samples, float]:
        """Feed one frame; returns (samples for the listener, stream time of the first)."""
        if len(self._mic) == 0:
            self._time = frame.time
        self._mic = np.concatenate([self._mic, frame.mic.astype(np.float32, copy=False)])
        self._ref = np.concatenate([self._ref, frame.played.astype(np.float32, copy=False)])
        n = len(self._mic) // BLOCK
        out: list[Samples] = []
        now = self._time - self._lag / self.rate  # the time of what the canceller gives
        start = self._line[0][1] if self._line else now
        for i in range(n):
            mic = self._mic[i * BLOCK:(i + 1) * BLOCK]
            block, passed = self._block(mic, self._ref[i * BLOCK:(i + 1) * BLOCK], playing)
            if passed:  # the user's onset: let the blocks held back through as well
                self._line = deque((b, t, True) for b, t, _ in self._line)
            self._line.append((block, now + i * BLOCK / self.rate, passed))
            if len(self._line) > self._delay:
                held, _, ok = self._line.popleft()
                out.append(held if ok else np.zeros_like(held))
        self._time += n * BLOCK / self.rate
        self._mic = self._mic[n * BLOCK:]
        self._ref = self._ref[n * BLOCK:]
        if not out:
            return np.zeros(0, dtype=np.float32), start
        return np.concatenate(out), start

    def report(self) -> EchoReport:
        erle = self._mic_energy / (self._res_energy + _EPS) if self._echo_blocks else 1.0
        return EchoReport(to_db(erle), self.gate.gain_db, self.user_blocks,
                          self.half_duplex)

    def _block(self, mic: Samples, ref: Samples, playing: bool) -> tuple[Samples, bool]:
        """One block: (the residual, whether the listener may hear it)."""
        sounding = bool(np.any(ref))
        self._since_played = 0 if (sounding or playing) else self._since_played + 1
        if not self.half_duplex:
            self._check_reference(playing, sounding)
        raw_mic, raw_ref = mic, ref
        if self._lag:  # line the microphone up with the canceller's output
            line = np.concatenate([self._mic_line, mic])
            mic, self._mic_line = line[:BLOCK], line[BLOCK:]
        if self.half_duplex:
            return mic, self._since_played >= self._tail_blocks + self.bulk // BLOCK
        if self.aec != "webrtc":  # AEC3 finds the delay itself
            found = self.delay.push(mic, ref, user=self.last.user or self.gate.quiet)
            if found is not None:  # leave the canceller two blocks of slack before the echo
                self._set_bulk(max(0, found // BLOCK - 2))
        line = np.concatenate([self._ref_line, ref])
        ref, self._ref_line = line[:BLOCK], line[BLOCK:]  # as it reaches the microphone
        sounding = bool(np.any(ref))
        if self.canceller is None:
            residual = mic
        elif self.aec == "webrtc":  # it takes the blocks as they come and lines them up
            residual = self.canceller.cancel(raw_mic, raw_ref)
            if self.no_echo:  # AEC3 would hold back the user's voice for her absent echo
                residual = mic
        else:
            residual = self.canceller.cancel(mic, ref)
        decision = self.gate.decide(residual, ref)
        self.last = decision
        if not decision.echo_active:
            return residual, True
        if decision.user:
            self.user_blocks += 1
            return residual, True
        if decision.learn and sounding:
            self._learn(mic, residual)
        return residual, False

    def _set_bulk(self, blocks: int) -> None:
        """Delay the reference by whole ``blocks`` from now on, keeping what the
        canceller learned (its partitions move down by as many blocks)."""
        if blocks <= self.bulk // BLOCK:
            return
        past = self.delay.history  # the reference up to and including this block
        self._ref_line = past[len(past) - (blocks + 1) * BLOCK:len(past) - BLOCK].copy()
        if isinstance(self.canceller, EchoCanceller):
            self.canceller.shift(blocks - self.bulk // BLOCK,
                                 past[:len(past) - (blocks + 1) * BLOCK])
        self.bulk = blocks * BLOCK
        # Judge the canceller afresh from here.
        self._echo_blocks, self._mic_energy, self._res_energy = 0, 0.0, 0.0
        self._recent.clear()

    def _check_reference(self, playing: bool, sounding: bool) -> None:
        # A device that plays but reports silence as what it played gives no reference.
        self._silent_ref_blocks = self._silent_ref_blocks + 1 if playing and not sounding else 0
        if self._silent_ref_blocks > round(1.0 * self.rate / BLOCK):
            self._fall_back(NO_REFERENCE)

    @property
    def no_echo(self) -> bool:
        """Her voice has not reached the microphone over the last 2 s she spoke
        (headphones): the microphone then goes to the gate as it is."""
        heard = self._echo_heard
        return len(heard) == heard.maxlen and sum(heard) <= len(heard) // 10

    def _learn(self, mic: Samples, residual: Samples) -> None:
        # A block of her echo alone: adapt the canceller, and judge how well it works.
        if self.canceller is None:
            return
        mic_energy = float(np.sum(np.square(mic, dtype=np.float64)))
        res_energy = float(np.sum(np.square(residual, dtype=np.float64)))
        self._echo_heard.append(mic_energy >= 4 * self.gate.noise * BLOCK)
        if not self._echo_heard[-1]:
            return  # no echo to learn from (headphones, or a pause): adapting would add noise
        self._recent.append((mic_energy, res_energy))
        if len(self._recent) == self._recent.maxlen:
            mic_sum = sum(m for m, _ in self._recent)
            if sum(r for _, r in self._recent) > 2 * mic_sum + _EPS:  # adding echo: diverged
                self.canceller.reset()
                self._recent.clear()
                self.resets += 1
                if self.resets > 3:
                    self._fall_back("echo cancellation keeps diverging here")
                return
        self.canceller.adapt(residual)
        self._echo_blocks += 1
        self._mic_energy += mic_energy
        self._res_energy += res_energy
        if self._echo_blocks >= self._warmup_blocks and self.gate.gain_db > self._max_gain_db:
            self._fall_back(
                f"her voice is still loud in the microphone after echo cancellation "
                f"({self.gate.gain_db:.0f} dB)")
        if self._echo_blocks >= 2 * self._warmup_blocks:  # report on recent blocks
            self._echo_blocks //= 2
            self._mic_energy /= 2
            self._res_energy /= 2

    def _fall_back(self, why: str) -> None:
        if self._may_switch and why != NO_REFERENCE and webrtc_available():
            self._switch_to_webrtc(why)
            return
        self.half_duplex = True
        self.notice = (f"{why}: switching to half-duplex (she cannot be interrupted by voice; "
                       "use headphones, or --push-to-talk)")

    def _switch_to_webrtc(self, why: str) -> None:
        """NLMS cannot bring her echo down here: AEC3 takes over (from the next block,
        whose stream time moves back by its latency; nothing is lost)."""
        self._may_switch = False
        self.aec = "webrtc"
        self.canceller = WebRtcCanceller(self.rate, block=BLOCK, noise_suppression=self._ns)
        self._lag = self.canceller.latency
        self._ref_line = np.zeros(self._lag, dtype=np.float32)
        self._mic_line = np.zeros(self._lag, dtype=np.float32)
        self.bulk = 0
        self.resets = 0
        self._echo_blocks, self._mic_energy, self._res_energy = 0, 0.0, 0.0
        self._recent.clear()
        self.notice = f"{why}: switching to WebRTC echo cancellation"
