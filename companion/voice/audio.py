"""Audio as data: the :class:`Audio` value type, WAV files, resampling.

All audio inside the package is mono float32 in [-1, 1]. The microphone side
runs at 16 kHz (what voice activity detection and speech recognition want);
speech synthesis keeps its engine's rate until it is played or saved.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import numpy.typing as npt

from companion.errors import AudioError

Samples = npt.NDArray[np.float32]

#: The rate of the microphone stream, VAD and STT.
MIC_RATE = 16_000


@dataclass(frozen=True, slots=True, eq=False)
class Audio:
    """A mono clip: float32 samples in [-1, 1] at ``rate`` Hz."""

    samples: Samples
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def resampled(self, rate: int) -> Audio:
        return self if rate == self.rate else Audio(resample(self.samples, self.rate, rate), rate)

    @staticmethod
    def silence(seconds: float, rate: int = MIC_RATE) -> Audio:
        return Audio(np.zeros(round(seconds * rate), dtype=np.float32), rate)

    @staticmethod
    def concat(clips: list[Audio], rate: int | None = None) -> Audio:
        rate = rate or (clips[0].rate if clips else MIC_RATE)
        parts = [c.resampled(rate).samples for c in clips]
        data = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return Audio(data.astype(np.float32, copy=False), rate)


def resample(samples: Samples, src: int, dst: int) -> Samples:
    """Band-limited resampling (polyphase FIR) from ``src`` Hz to ``dst`` Hz."""
    if src == dst or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(src, dst)
    out = resample_poly(samples.astype(np.float32, copy=False), dst // g, src // g)
    return np.asarray(out, dtype=np.float32)


def read_wav(path: Path | str) -> Audio:
    """A WAV file (8/16/24/32-bit PCM, any channels: mixed down) as :class:`Audio`."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except FileNotFoundError as exc:
        raise AudioError(f"{path}: no such file") from exc
    except (wave.Error, EOFError, OSError) as exc:
        raise AudioError(f"{path}: not a readable PCM WAV file ({exc})") from exc
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / float(1 << 31)
    else:
        raise AudioError(f"{path}: unsupported sample width {width} bytes")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    return Audio(np.ascontiguousarray(data, dtype=np.float32), rate)


def write_wav(path: Path | str, audio: Audio) -> Path:
    """Write ``audio`` as 16-bit PCM mono WAV (parent folders are created)."""
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(audio.rate)
            w.writeframes(pcm.tobytes())
    except OSError as exc:
        raise AudioError(f"cannot write {out}: {exc}") from exc
    return out


class StreamResampler:
    """Resamples a stream block by block from ``src`` Hz to ``dst`` Hz (a device that
    forces its own rate), carrying the filter's context from block to block."""

    def __init__(self, src: int, dst: int) -> None:
        g = gcd(src, dst)
        self.src, self.dst = src, dst
        self._up, self._down = dst // g, src // g
        self._tail = np.zeros(self._down * max(1, 256 // self._down), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, block: Samples) -> Samples:
        if self.src == self.dst:
            return block.astype(np.float32, copy=False)
        from scipy.signal import resample_poly

        self._pending = np.concatenate([self._pending, block.astype(np.float32, copy=False)])
        n = len(self._pending) // self._down * self._down
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        data = np.concatenate([self._tail, self._pending[:n]])
        out = resample_poly(data, self._up, self._down)
        skip = len(self._tail) * self._up // self._down
        self._tail = data[len(data) - len(self._tail) :]
        self._pending = self._pending[n:]
        return np.asarray(out[skip:], dtype=np.float32)
