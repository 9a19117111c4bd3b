"""Her own voice must not sound like the user: echo cancellation and a double-talk gate.

The microphone hears the user *and* what the speaker plays. Every
:class:`~companion.voice.base.Frame` carries what was played during the same
block (``frame.played``), the reference for these stages:

0. :class:`~companion.voice.canceller.DelayEstimator` finds the bulk delay from
   speaker to microphone (GCC-PHAT) during her first second of speech, and the
   reference is delayed by it, so the canceller only models what is left.
1. :class:`~companion.voice.canceller.EchoCanceller`, a partitioned-block
   frequency-domain NLMS filter (the MDF family, as in Speex and WebRTC's AEC):
   it learns the path from the speaker to the microphone (gain, room) and
   subtracts the echo it predicts. It adapts only while the user is silent, so
   their speech does not teach it to cancel them.
2. :class:`EchoGate`, a Geigel-style double-talk detector on what is left: it
   tracks how loud the residual echo is relative to the reference (the
   *residual gain*, which falls as the canceller converges) and lets audio
   through to the listener only when the residual is clearly louder than her
   echo could be. Otherwise the listener hears silence.

:class:`EchoGuard` runs both and owns the fallback policy: when echo handling
cannot work (the device gives no reference while playing, or the canceller
cannot bring the echo down), it switches to half-duplex (the microphone is
ignored while she speaks, so she cannot be interrupted by voice) and says so
once in :attr:`EchoGuard.notice`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from companion.voice.audio import Samples
from companion.voice.base import Frame
from companion.voice.canceller import BLOCK, DelayEstimator, EchoCanceller

_EPS = 1e-10


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What the gate made of one block."""

    #: The residual is louder than her echo could be: the user is talking.
    user: bool
    #: This block alone is over the threshold (``user`` waits for a few such blocks).
    over: bool
    #: She is playing (or her echo is still ringing) in this block.
    echo_active: bool
    residual_db: float
    threshold_db: float
    #: Her echo alone, safe to learn from (not near the user's speech).
    learn: bool


def _db(power: float) -> float:
    return 10.0 * float(np.log10(power + _EPS))


class EchoGate:
    """Geigel-style double-talk detection on the canceller's residual.

    ``margin_db``: how much louder than the expected residual echo a block must
    be to count as the user. The expected residual echo is the reference power
    (its peak over the echo window) times the residual gain, which starts at
    ``prior_db`` (0 dB: her echo may be as loud as what she plays) and is
    learned from blocks where only she is heard.
    """

    def __init__(
        self,
        *,
        window_blocks: int = 40,
        margin_db: float = 8.0,
        prior_db: float = 0.0,
        floor_db: float = -62.0,
        open_blocks: int = 2,
        hold_blocks: int = 12,
        learn_blocks: int = 64,
        quiet_blocks: int = 30,
        min_gain_db: float = -30.0,
    ) -> None:
        # Blocks of reference the echo may lag by (640 ms: the echo may come that
        # late until the bulk delay is known and taken out).
        self._ref_powers: deque[float] = deque(maxlen=window_blocks)
        self.margin = 10 ** (margin_db / 10)
        self.gain = 10 ** (prior_db / 10)
        self._prior = self.gain
        self._min_gain = 10 ** (min_gain_db / 10)
        self.floor = 10 ** (floor_db / 10)
        self.noise = self.floor
        self._open_blocks = open_blocks
        self._hold_blocks = hold_blocks
        self._over = 0
        self._hold = 0
        self._ratios: deque[float] = deque(maxlen=learn_blocks)
        self._min_ratios = 25
        self._pending: deque[float] = deque(maxlen=4)
        self._quiet_blocks = quiet_blocks
        self._quiet = 0

    def reset(self) -> None:
        self.gain = self._prior
        self._over = self._hold = self._quiet = 0
        self._ratios.clear()
        self._pending.clear()

    @property
    def gain_db(self) -> float:
        return _db(self.gain)

    @property
    def quiet(self) -> bool:
        """The user was heard over her just now (nothing is learned meanwhile)."""
        return self._hold > 0 or self._quiet > 0

    def decide(self, residual: Samples, ref: Samples) -> GateDecision:
        ref_now = float(np.mean(np.square(ref, dtype=np.float64)))
        self._ref_powers.append(ref_now)
        ref_peak = max(self._ref_powers)
        res = float(np.mean(np.square(residual, dtype=np.float64)))
        active = ref_peak > self.floor
        if not active:  # the noise floor, measured while she is silent: follows quiet
            # blocks down at once, and louder ones up slowly (3 dB/s).
            self.noise = min(max(res, self.floor), self.noise * 1.011)
        threshold = self.margin * (self.gain * ref_peak + self.noise)
        if not active:
            self._over = self._hold = self._quiet = 0
            self._pending.clear()
            loud = res > self.margin * self.noise
            return GateDecision(loud, loud, False, _db(res), _db(self.margin * self.noise), False)
        self._over = self._over + 1 if res > threshold else 0
        if self._over >= self._open_blocks:
            self._hold = self._hold_blocks
            self._quiet = self._quiet_blocks
            self._pending.clear()  # the blocks just before were the user's onset
        elif self._hold:
            self._hold -= 1
        elif self._quiet:
            self._quiet -= 1
        user = self._hold > 0
        learn = not user and not self._quiet and self._over == 0
        if learn and ref_now > 0.1 * ref_peak:
            # Only her echo in this block, and she is sounding: learn the residual
            # gain, a high percentile of the ratios seen over the last second (so it
            # falls as the canceller converges). Ratios wait a few blocks before
            # they count, so that the start of the user's speech is not learned.
            self._pending.append(max(res - self.noise, 0.0) / (ref_peak + _EPS))
            if len(self._pending) == self._pending.maxlen:
                self._ratios.append(self._pending.popleft())
            if len(self._ratios) >= self._min_ratios:
                # Never below min_gain: speech is not stationary, and a residual
                # 30 dB under what she plays is quieter than anyone talking to her.
                self.gain = max(float(np.percentile(self._ratios, 95)), self._min_gain)
        return GateDecision(user, self._over > 0, True, _db(res), _db(threshold), learn)


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
        tail: float = 0.3,
        warmup_seconds: float = 3.0,
        max_residual_db: float = -8.0,
    ) -> None:
        self.rate = rate
        self.half_duplex = half_duplex
        self.notice = ""
        self.canceller = EchoCanceller() if cancel else None
        self.gate = EchoGate()
        self.delay = DelayEstimator(rate)
        #: The reference is delayed by this many samples before the canceller and gate.
        self.bulk = 0
        self._ref_line = np.zeros(0, dtype=np.float32)
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
        #: Blocks passed to the listener while she was playing (the user talking over her).
        self.user_blocks = 0

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
        start = self._line[0][1] if self._line else self._time
        for i in range(n):
            mic = self._mic[i * BLOCK:(i + 1) * BLOCK]
            block, passed = self._block(mic, self._ref[i * BLOCK:(i + 1) * BLOCK], playing)
            if passed:  # the user's onset: let the blocks held back through as well
                self._line = deque((b, t, True) for b, t, _ in self._line)
            self._line.append((block, self._time + i * BLOCK / self.rate, passed))
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
        return EchoReport(_db(erle), self.gate.gain_db, self.user_blocks,
                          self.half_duplex)

    def _block(self, mic: Samples, ref: Samples, playing: bool) -> tuple[Samples, bool]:
        """One block: (the residual, whether the listener may hear it)."""
        sounding = bool(np.any(ref))
        self._since_played = 0 if (sounding or playing) else self._since_played + 1
        if not self.half_duplex:
            self._check_reference(playing, sounding)
        if self.half_duplex:
            return mic, self._since_played >= self._tail_blocks + self.bulk // BLOCK
        found = self.delay.push(mic, ref, user=self.last.user or self.gate.quiet)
        if found is not None:  # leave the canceller two blocks of slack before the echo
            self._set_bulk(max(0, found // BLOCK - 2))
        line = np.concatenate([self._ref_line, ref])
        ref, self._ref_line = line[:BLOCK], line[BLOCK:]  # as it reaches the microphone
        sounding = bool(np.any(ref))
        residual = mic if self.canceller is None else self.canceller.cancel(mic, ref)
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
        if self.canceller is not None:
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
            self._fall_back("the audio device does not report what it plays")

    def _learn(self, mic: Samples, residual: Samples) -> None:
        # A block of her echo alone: adapt the canceller, and judge how well it works.
        if self.canceller is None:
            return
        mic_energy = float(np.sum(np.square(mic, dtype=np.float64)))
        res_energy = float(np.sum(np.square(residual, dtype=np.float64)))
        if mic_energy < 4 * self.gate.noise * BLOCK:
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
        self.half_duplex = True
        self.notice = (f"{why}: switching to half-duplex (she cannot be interrupted by voice; "
                       "use headphones, or --push-to-talk)")
