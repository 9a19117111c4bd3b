"""The voice protocols: one small protocol per backend kind.

- :class:`TTS` turns a sentence into :class:`~companion.voice.audio.Audio`, said in a
  :class:`~companion.persona.model.SpeechStyle`.
- :class:`STT` turns an utterance (16 kHz) into a :class:`Transcript`.
- :class:`VAD` scores one 16 kHz frame for speech.
- :class:`AudioDevice` is a full-duplex stream: it yields :class:`Frame` blocks
  that pair what the microphone heard with what the speaker played during the
  same block (the echo reference), and plays queued clips. The microphone
  (sounddevice) and the virtual device (WAV files in, WAV files out) implement
  it, so the voice loop has one code path for both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# How to say it: one type with the persona's voice (a persona's ``voice`` is a style).
from companion.persona.model import SpeechStyle as SpeechStyle
from companion.voice.audio import Audio, Samples


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the recognizer heard."""

    text: str
    #: Seconds of audio transcribed.
    seconds: float = 0.0


@runtime_checkable
class TTS(Protocol):
    """A speech synthesizer."""

    name: str

    def synthesize(self, text: str, style: SpeechStyle) -> Audio:
        """Speak ``text`` (one sentence of plain prepared text) into a clip."""
        ...

    def voices(self) -> list[str]:
        """Voice ids this engine can use in :attr:`SpeechStyle.voice`."""
        ...


@runtime_checkable
class STT(Protocol):
    """A speech recognizer."""

    name: str

    def transcribe(self, audio: Audio) -> Transcript:
        """Recognize one utterance (any rate; backends resample to what they need)."""
        ...


@runtime_checkable
class VAD(Protocol):
    """Voice activity detection on fixed-size 16 kHz frames."""

    #: Samples per frame the detector takes (512 for Silero at 16 kHz).
    frame_samples: int

    def __call__(self, frame: Samples) -> float:
        """Probability (0..1) that ``frame`` holds speech; keeps state across calls."""
        ...

    def reset(self) -> None:
        """Forget the state carried between frames (at the start of an utterance)."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One block of the duplex stream, at the device's rate (16 kHz mono)."""

    #: What the microphone heard.
    mic: Samples
    #: What the speaker played during the same block (zeros when silent).
    played: Samples
    #: Stream time of the block's first sample, in seconds from the stream start.
    time: float


class Playback(Protocol):
    """A clip queued on an :class:`AudioDevice`."""

    @property
    def done(self) -> bool:
        """Played to the end, or dropped by :meth:`AudioDevice.stop_playback`."""
        ...

    @property
    def played_seconds(self) -> float:
        """How much of the clip has gone out of the speaker."""
        ...


@runtime_checkable
class AudioDevice(Protocol):
    """A full-duplex audio stream (microphone + speaker), real or virtual."""

    #: Sample rate of frames and of playback (16 kHz).
    rate: int

    def frames(self) -> Iterator[Frame]:
        """Blocks as they arrive (paced by the device); ends when the input ends or on close."""
        ...

    def play(self, audio: Audio) -> Playback:
        """Queue ``audio`` after whatever is queued; returns at once."""
        ...

    def stop_playback(self) -> None:
        """Silence the speaker now: drop the clip playing and everything queued."""
        ...

    @property
    def playing(self) -> bool:
        """Whether anything is playing or queued."""
        ...

    def close(self) -> None:
        ...
