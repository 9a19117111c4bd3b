"""Speech recognition backends and :func:`load_stt`, which picks one by name.

==================  ===========================================================
``faster-whisper``  :class:`FasterWhisperSTT`: Whisper tiny.en, int8, CPU (shipped)
``fake``            :class:`FakeSTT`: scripted transcripts (tests)
``auto``            faster-whisper
==================  ===========================================================

Why tiny.en on faster-whisper: on our 20-sentence test set (bench/stt_wer.py)
it gets 0.6% WER on Piper speech and 5.6% on robotic espeak-ng speech, at
0.3x real time on one core; pocketsphinx 5 is faster on Piper (0.16x) but
gets 7.9% and 84%. See the README for the figures.

The engines load their libraries in their constructors, so importing this
package costs only numpy.
"""

from __future__ import annotations

from companion.errors import AudioError
from companion.voice.base import STT
from companion.voice.stt.fake import FakeSTT
from companion.voice.stt.whisper import FasterWhisperSTT

__all__ = ["ENGINES", "FakeSTT", "FasterWhisperSTT", "load_stt"]

ENGINES = ("auto", "faster-whisper", "fake")


def load_stt(name: str = "auto", *, model: str = "", threads: int = 1) -> STT:
    """The recognizer ``name`` (see the table above), loaded and warmed up.

    ``model`` picks the Whisper model (directory, size or hub id already in the
    local cache; "" for the shipped tiny.en). Raises
    :class:`~companion.errors.AudioError` saying what to install.
    """
    if name in ("auto", "faster-whisper"):
        return FasterWhisperSTT(model, threads=threads)
    if name == "fake":
        return FakeSTT()
    raise AudioError(f"unknown speech recognizer {name!r} (choose from {', '.join(ENGINES)})")
