"""A scripted synthesizer for tests: :class:`FakeTTS`."""

from __future__ import annotations

import threading
import time

import numpy as np

from companion.voice.audio import MIC_RATE, Audio
from companion.voice.base import SpeechStyle
from companion.voice.tts.null import spoken_seconds


class FakeTTS:
    """A deterministic stand-in for a real engine.

    Each sentence becomes a quiet sine tone (``frequency`` Hz, peak
    ``amplitude`` x ``style.volume``) lasting as long as the words take at
    ``style.rate`` (see :func:`~companion.voice.tts.null.spoken_seconds`), at
    16 kHz. ``delay`` seconds of sleep per call imitate synthesis time. Every call
    is recorded in :attr:`calls` as ``(text, style)``; safe to call from several
    threads.
    """

    name = "fake"

    def __init__(
        self,
        *,
        rate: int = MIC_RATE,
        frequency: float = 220.0,
        amplitude: float = 0.1,
        delay: float = 0.0,
    ) -> None:
        self.rate = rate
        self.frequency = frequency
        self.amplitude = amplitude
        self.delay = delay
        self.calls: list[tuple[str, SpeechStyle]] = []
        self._lock = threading.Lock()

    def synthesize(self, text: str, style: SpeechStyle) -> Audio:
        with self._lock:
            self.calls.append((text, style))
        if self.delay > 0:
            time.sleep(self.delay)
        n = round(spoken_seconds(text, style.rate) * self.rate)
        t = np.arange(n, dtype=np.float64) / self.rate
        peak = self.amplitude * min(max(style.volume, 0.0), 1.0)
        tone = peak * np.sin(2.0 * np.pi * self.frequency * t)
        return Audio(tone.astype(np.float32), self.rate)

    @property
    def texts(self) -> list[str]:
        """The sentences synthesized so far, in order."""
        with self._lock:
            return [text for text, _ in self.calls]

    def voices(self) -> list[str]:
        return ["fake"]
