"""The adaptive parts of echo handling: :class:`EchoCanceller` and :class:`DelayEstimator`.

Both work on blocks of :data:`BLOCK` samples at 16 kHz; :class:`~companion.voice.echo.EchoGuard`
puts them together with the double-talk gate.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from companion.voice.audio import Samples

#: Samples per processing block (16 ms at 16 kHz).
BLOCK = 256


class Canceller(Protocol):
    """What :class:`~companion.voice.echo.EchoGuard` needs of an echo canceller:
    this one (NLMS) or :class:`~companion.voice.webrtc_aec.WebRtcCanceller` (AEC3)."""

    #: Samples the output lags the input by.
    latency: int

    def cancel(self, mic: Samples, ref: Samples) -> Samples:
        """One block: the microphone minus the echo of ``ref``."""
        ...

    def adapt(self, residual: Samples) -> None:
        """Learn from the last block's residual (her echo alone was heard)."""
        ...

    def reset(self) -> None:
        """Forget what was learned."""
        ...


class EchoCanceller:
    """Partitioned-block frequency-domain NLMS (overlap-save, constrained).

    ``partitions`` blocks of :data:`BLOCK` samples set the longest echo path it
    can model (16 x 16 ms = 256 ms: the speaker-to-microphone delay of a sound
    card plus the room). Works on whole blocks: feed it block by block.
    """

    def __init__(self, *, partitions: int = 16, mu: float = 0.8, block: int = BLOCK) -> None:
        self.block = block
        self.latency = 0
        self.partitions = partitions
        self.mu = mu
        bins = block + 1
        self._w = np.zeros((partitions, bins), dtype=np.complex128)  # filter, per partition
        self._x = np.zeros((partitions, bins), dtype=np.complex128)  # reference spectra, newest 1st
        self._prev = np.zeros(block, dtype=np.float64)
        # Regularization: about -70 dBFS of reference per bin, so silence does not blow up steps.
        self._reg = 2 * block * 1e-7 * partitions

    def reset(self) -> None:
        self._w[:] = 0.0

    def shift(self, blocks: int, history: Samples) -> None:
        """The reference will come ``blocks`` blocks later: move the filter down as
        many partitions and rebuild the reference spectra from ``history`` (the
        delayed reference up to the next block, a whole number of blocks)."""
        b, k = self.block, min(blocks, self.partitions)
        self._w = np.roll(self._w, -k, axis=0)
        self._w[self.partitions - k:] = 0.0
        h = np.concatenate([np.zeros((self.partitions + 1) * b), history.astype(np.float64)])
        end = len(h)
        for j in range(self.partitions):
            self._x[j] = np.fft.rfft(h[end - (j + 2) * b:end - j * b])
        self._prev = h[end - b:]

    def cancel(self, mic: Samples, ref: Samples) -> Samples:
        """One block: the microphone minus the echo predicted from ``ref``."""
        b = self.block
        x = ref.astype(np.float64)
        spectrum = np.fft.rfft(np.concatenate([self._prev, x]))
        self._prev = x
        self._x = np.roll(self._x, 1, axis=0)
        self._x[0] = spectrum
        estimate = np.fft.irfft((self._w * self._x).sum(axis=0))[b:]
        return (mic.astype(np.float64) - estimate).astype(np.float32)

    def adapt(self, residual: Samples) -> None:
        """Learn from the last block's residual (call only when it held her echo alone)."""
        b = self.block
        err = np.fft.rfft(np.concatenate([np.zeros(b), residual.astype(np.float64)]))
        # Each bin's step is normalized by the reference power over the whole filter span.
        power = (self._x.real**2 + self._x.imag**2).sum(axis=0)
        self._w += self.mu * np.conj(self._x) * (err / (power + self._reg))
        # Keep each partition a causal block-long filter (the overlap-save constraint).
        taps = np.fft.irfft(self._w, axis=1)
        taps[:, b:] = 0.0
        self._w = np.fft.rfft(taps, axis=1)


class DelayEstimator:
    """The bulk delay from speaker to microphone, by GCC-PHAT over the last second.

    Sound cards add tens to hundreds of milliseconds between what is played and
    what the microphone hears; the canceller only needs to model what is left.
    Estimates every half second of her voice; reports a delay once two in a
    row agree (so the user talking over her does not move it).
    """

    def __init__(self, rate: int, *, max_delay: float = 0.6, window: float = 1.0) -> None:
        self.max_lag = round(max_delay * rate)
        self._ref = np.zeros(round(window * rate) + self.max_lag, dtype=np.float32)
        self._mic = np.zeros(round(window * rate), dtype=np.float32)
        self._every = round(0.5 * rate / BLOCK)
        self._sounding = 0
        self._last: int | None = None
        #: The agreed delay in samples (None until known).
        self.delay: int | None = None

    @property
    def history(self) -> Samples:
        """The last second and more of the reference, newest last."""
        return self._ref

    def push(self, mic: Samples, ref: Samples, *, user: bool = False) -> int | None:
        """Feed one block; returns the delay (samples) once agreed, else None.

        ``user``: the user may be talking, so the block is not counted. Once a
        delay is agreed it is kept.
        """
        if self.delay is not None:
            return None
        n = len(mic)
        self._ref = np.concatenate([self._ref[n:], ref])
        self._mic = np.concatenate([self._mic[n:], mic])
        if user:
            self._sounding, self._last = 0, None
            return None
        if not ref.any():
            return None
        self._sounding += 1
        if self._sounding < self._every or not self._ref[: len(self._mic)].any():
            return None
        self._sounding = 0
        lag = self._estimate()
        agreed = lag is not None and self._last is not None and abs(lag - self._last) <= 32
        self._last = lag
        if not agreed:
            return None
        self.delay = lag
        return lag

    def _estimate(self) -> int | None:
        size = 1 << (len(self._ref) + len(self._mic)).bit_length()
        cross = np.fft.rfft(self._ref, size) * np.conj(np.fft.rfft(self._mic, size))
        cc = np.fft.irfft(cross / (np.abs(cross) + 1e-12), size)[: self.max_lag + 1]
        peak = int(np.argmax(cc))
        if cc[peak] < 6 * float(np.mean(np.abs(cc))) + 1e-9:  # no clear echo (headphones)
            return None
        return self.max_lag - peak
