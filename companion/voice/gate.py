"""The double-talk gate: is what is left after the canceller the user, or her echo?

:class:`EchoGate` is the last stage of :class:`~companion.voice.echo.EchoGuard`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from companion.voice.audio import Samples

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


def to_db(power: float) -> float:
    """Power as decibels (silence is -100 dB)."""
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
        return to_db(self.gain)

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
            floor = to_db(self.margin * self.noise)
            return GateDecision(loud, loud, False, to_db(res), floor, False)
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
        return GateDecision(user, self._over > 0, True, to_db(res), to_db(threshold), learn)
