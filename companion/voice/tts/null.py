"""Silent speech: :class:`NullTTS` and the speaking-time estimate the fakes share.

``NullTTS`` returns silence as long as the text would take to say at the
style's rate, not a zero-length clip: the voice loop still paces itself
(barge-in windows, turn-taking, "speaking" state) as if it had spoken, while the
text is shown on screen. Use it where no synthesizer is installed, or to keep a
voice session quiet.
"""

from __future__ import annotations

from companion.voice.audio import MIC_RATE, Audio
from companion.voice.base import SpeechStyle

#: Words per minute under which the estimate does not go (guards against rate 0).
_MIN_RATE = 40.0


def spoken_seconds(text: str, rate: float) -> float:
    """Seconds that ``text`` takes to say at ``rate`` words per minute (0 for no words)."""
    words = len(text.split())
    return words * 60.0 / max(float(rate), _MIN_RATE) if words else 0.0


class NullTTS:
    """Silence of the right length, at 16 kHz."""

    name = "null"

    def __init__(self, rate: int = MIC_RATE) -> None:
        self.rate = rate

    def synthesize(self, text: str, style: SpeechStyle) -> Audio:
        return Audio.silence(spoken_seconds(text, style.rate), self.rate)

    def voices(self) -> list[str]:
        return []
