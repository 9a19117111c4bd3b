"""WebRTC's echo canceller (AEC3, through ``pywebrtc-audio``) behind the canceller interface.

:class:`WebRtcCanceller` does what :class:`~companion.voice.canceller.EchoCanceller`
does for :class:`~companion.voice.echo.EchoGuard` (one block of microphone and
reference in, the microphone without her echo out), with the audio processing
module that browsers and phones run: AEC3 finds the delay from speaker to
microphone itself (no bulk-delay search needed), adapts through double talk, and
suppresses the echo its filter leaves. The high-pass filter AEC3 needs is always
on; noise suppression is optional (off by default: the recognizer does better on
the unprocessed voice); automatic gain control is off.

The module processes 10 ms frames, so blocks are re-chunked: the output lags the
input by :attr:`WebRtcCanceller.latency` samples (at most 8 ms at 16 kHz with
256-sample blocks).

``pywebrtc-audio`` comes with the ``voice`` extra; :func:`webrtc_available`
says whether it is installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from companion.errors import AudioError
from companion.voice.audio import Samples

#: What to run when the library is missing.
INSTALL_HINT = "pip install 'companion[voice]' (or pip install pywebrtc-audio)"


def webrtc_available() -> bool:
    """Whether ``pywebrtc-audio`` can be imported."""
    try:
        import pywebrtc_audio  # noqa: F401
    except ImportError:
        return False
    return True


class WebRtcCanceller:
    """AEC3 on blocks of any fixed size, at any rate WebRTC takes (16, 32, 48 kHz best).

    ``stream_delay_ms`` is a hint for the speaker-to-microphone delay (0: AEC3
    estimates it). Raises :class:`~companion.errors.AudioError` when the library
    is not installed.
    """

    def __init__(
        self,
        rate: int,
        *,
        block: int,
        noise_suppression: bool = False,
        stream_delay_ms: int = 0,
    ) -> None:
        try:
            import pywebrtc_audio
        except ImportError as exc:
            raise AudioError(f"WebRTC echo cancellation needs pywebrtc-audio: {INSTALL_HINT}") \
                from exc
        self.rate = rate
        self.block = block
        self._frame = max(1, rate // 100)
        # Keep this many processed samples ahead, so every block finds a whole block ready.
        self.latency = max((k * block) % self._frame for k in range(1, self._frame + 1))
        self._options: dict[str, Any] = {
            "sample_rate": rate,
            "echo_cancellation": True,
            "high_pass_filter": True,
            "noise_suppression": noise_suppression,
            "auto_gain_control": False,
            "stream_delay_ms": stream_delay_ms,
        }
        self._apm: Any = pywebrtc_audio.AudioProcessor(**self._options)
        self._mic = np.zeros(0, dtype=np.float32)
        self._ref = np.zeros(0, dtype=np.float32)
        self._out = np.zeros(self.latency, dtype=np.float32)
        # The module's own delay (AEC3 and the noise suppressor hold a few ms back).
        self.latency += _measure_delay(pywebrtc_audio.AudioProcessor(**self._options), rate)

    def reset(self) -> None:
        """Forget what was learned (the filter and the delay), keeping the settings."""
        self._apm.reset()

    def cancel(self, mic: Samples, ref: Samples) -> Samples:
        """One block: the microphone without her echo, ``latency`` samples late."""
        if len(mic) != self.block or len(ref) != self.block:
            raise ValueError(f"blocks of {self.block} samples, got {len(mic)} and {len(ref)}")
        self._mic = np.concatenate([self._mic, _clip(mic)])
        self._ref = np.concatenate([self._ref, _clip(ref)])
        whole = len(self._mic) // self._frame * self._frame
        if whole:
            done = self._apm.process(self._mic[:whole], self._ref[:whole])
            self._out = np.concatenate([self._out, np.asarray(done, dtype=np.float32)])
            self._mic, self._ref = self._mic[whole:], self._ref[whole:]
        out, self._out = self._out[:self.block], self._out[self.block:]
        return out

    def adapt(self, residual: Samples) -> None:
        """AEC3 adapts on its own, through double talk too: nothing to do."""


def _measure_delay(apm: Any, rate: int) -> int:
    """Samples by which ``apm`` delays the microphone: the lag of the best match
    between 0.3 s of noise and what comes out."""
    frame, n = rate // 100, 30 * (rate // 100)
    noise = np.random.default_rng(0).normal(0.0, 0.05, n).astype(np.float32)
    silent = np.zeros(frame, dtype=np.float32)
    out = np.concatenate([apm.process(noise[i:i + frame], silent) for i in range(0, n, frame)])
    half = n // 2  # past the start, where the high-pass filter settles
    spectrum = np.fft.rfft(out[half:], 2 * half) * np.conj(np.fft.rfft(noise[half:], 2 * half))
    lags = np.fft.irfft(spectrum, 2 * half)[: half // 2]
    return int(np.argmax(lags))


def _clip(x: Samples) -> Samples:
    # WebRTC takes float audio in [-1, 1]; a clipping device may hand us more.
    return np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
