"""Speech synthesis backends and :func:`load_tts`, which picks one by name.

===========  ==============================================================
``piper``    :class:`PiperTTS`: natural neural voice (en_US-joe-medium shipped)
``pyttsx3``  :class:`Pyttsx3TTS`: espeak-ng through pyttsx3, robotic but light
``null``     :class:`NullTTS`: silence as long as the words (text-only sessions)
``fake``     :class:`FakeTTS`: a quiet tone per sentence, records calls (tests)
``auto``     Piper if it loads with its voice, else pyttsx3 if espeak-ng works
===========  ==============================================================

The engines load their libraries in their constructors, so importing this
package costs only numpy.
"""

from __future__ import annotations

from companion.errors import AudioError
from companion.voice.base import TTS
from companion.voice.tts.fake import FakeTTS
from companion.voice.tts.null import NullTTS, spoken_seconds
from companion.voice.tts.piper import PiperTTS
from companion.voice.tts.pyttsx3_engine import Pyttsx3TTS

__all__ = ["ENGINES", "FakeTTS", "NullTTS", "PiperTTS", "Pyttsx3TTS", "load_tts", "spoken_seconds"]

ENGINES = ("auto", "piper", "pyttsx3", "null", "fake")


def load_tts(name: str = "auto", *, voice: str = "") -> TTS:
    """The synthesizer ``name`` (see the table above), loaded and ready.

    ``voice`` is the engine's default voice: a Piper model (path or id) or an
    espeak voice id; empty for the engine's own. Raises
    :class:`~companion.errors.AudioError` saying what to install when no engine
    can speak; callers then fall back to text.
    """
    if name == "piper":
        return PiperTTS(voice)
    if name == "pyttsx3":
        return Pyttsx3TTS(voice)
    if name == "null":
        return NullTTS()
    if name == "fake":
        return FakeTTS()
    if name != "auto":
        raise AudioError(f"unknown speech engine {name!r} (choose from {', '.join(ENGINES)})")
    try:
        return PiperTTS(voice)
    except AudioError as piper_error:
        try:
            return Pyttsx3TTS(voice)
        except AudioError as espeak_error:
            raise AudioError(
                f"no speech engine works (piper: {piper_error}; pyttsx3: {espeak_error})"
            ) from espeak_error
