"""Speech synthesis: the fakes' logic, and a few fast checks of the real engines."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from companion.errors import AudioError
from companion.voice.audio import Audio
from companion.voice.base import TTS, SpeechStyle
from companion.voice.tts import FakeTTS, NullTTS, PiperTTS, Pyttsx3TTS, load_tts, spoken_seconds

NORMAL = SpeechStyle()


def rms(audio: Audio) -> float:
    return float(np.sqrt(np.mean(np.square(audio.samples)))) if len(audio.samples) else 0.0


# ------------------------------------------------------------------ fakes


def test_spoken_seconds_counts_words_at_the_rate() -> None:
    assert spoken_seconds("one two three", 180) == pytest.approx(1.0)
    assert spoken_seconds("   ", 180) == 0.0
    assert spoken_seconds("word", 0) == pytest.approx(1.5)  # rate floored at 40 wpm


def test_fake_tts_is_a_quiet_deterministic_tone_and_records_calls() -> None:
    tts = FakeTTS()
    style = SpeechStyle(voice="x", rate=120, volume=0.5)
    a = tts.synthesize("Hello there, friend.", style)
    assert isinstance(tts, TTS)
    assert a.rate == 16_000 and a.seconds == pytest.approx(1.5)
    assert a.samples.dtype == np.float32
    assert 0.03 < float(np.abs(a.samples).max()) <= 0.05 + 1e-6
    assert np.array_equal(a.samples, tts.synthesize("Hello there, friend.", style).samples)
    assert tts.calls == [("Hello there, friend.", style)] * 2
    assert tts.texts == ["Hello there, friend."] * 2
    assert tts.synthesize("", style).seconds == 0.0


def test_fake_tts_faster_rate_is_shorter() -> None:
    tts = FakeTTS()
    slow = tts.synthesize("one two three four", SpeechStyle(rate=120))
    fast = tts.synthesize("one two three four", SpeechStyle(rate=240))
    assert fast.seconds == pytest.approx(slow.seconds / 2)


def test_null_tts_is_silence_as_long_as_the_words() -> None:
    tts = NullTTS()
    a = tts.synthesize("one two three", SpeechStyle(rate=180))
    assert isinstance(tts, TTS)
    assert a.seconds == pytest.approx(1.0) and not a.samples.any()
    assert tts.voices() == []


def test_load_tts_by_name() -> None:
    assert isinstance(load_tts("null"), NullTTS)
    assert isinstance(load_tts("fake"), FakeTTS)
    with pytest.raises(AudioError, match="unknown speech engine 'espeak'"):
        load_tts("espeak")


# ------------------------------------------------------------------ Piper


@pytest.fixture(scope="module")
def piper() -> Iterator[PiperTTS]:
    try:
        yield PiperTTS()
    except AudioError as exc:  # pragma: no cover - only without the voice extra
        pytest.skip(str(exc))


def test_piper_says_hello_there(piper: PiperTTS) -> None:
    a = piper.synthesize("Hello there.", NORMAL)
    assert a.rate == 22_050
    assert 0.4 < a.seconds < 2.0
    assert rms(a) > 0.02
    assert float(np.abs(a.samples).max()) == pytest.approx(NORMAL.volume, abs=0.01)
    assert piper.voices() == ["en_US-joe-medium"]


def test_piper_rate_changes_duration(piper: PiperTTS) -> None:
    text = "I was thinking about you today."
    slow = piper.synthesize(text, SpeechStyle(rate=120)).seconds
    fast = piper.synthesize(text, SpeechStyle(rate=240)).seconds
    assert fast < 0.7 * slow


def test_piper_empty_text_and_unknown_voice(piper: PiperTTS) -> None:
    assert piper.synthesize("  ", NORMAL).seconds == 0.0
    # a voice id for another engine falls back to the model's own voice
    assert piper.synthesize("Yes.", SpeechStyle(voice="gmw/en-us")).seconds > 0.2


def test_piper_missing_voice_is_one_actionable_line() -> None:
    with pytest.raises(AudioError, match="not found .*pass a path to an .onnx file"):
        PiperTTS("en_GB-nobody-low")
    with pytest.raises(AudioError, match="no such file"):
        PiperTTS("/nonexistent/voice.onnx")


def test_load_tts_auto_picks_piper(piper: PiperTTS) -> None:
    assert load_tts("auto").name == "piper"


# ------------------------------------------------------------------ pyttsx3 / espeak-ng

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)


@pytest.fixture(scope="module")
def espeak() -> Pyttsx3TTS:
    return Pyttsx3TTS()


@needs_espeak
def test_pyttsx3_two_sentences_in_a_row_are_two_clips(espeak: Pyttsx3TTS) -> None:
    # pyttsx3 keeps writing to the last save_to_file target, and its run loop can
    # return before espeak-ng is done: each clip must be its own sentence.
    short = espeak.synthesize("Hello there.", NORMAL)
    long = espeak.synthesize("This second sentence is quite a lot longer than the first.", NORMAL)
    again = espeak.synthesize("Hello there.", NORMAL)
    assert short.rate == 22_050 and rms(short) > 0.01
    assert long.seconds > 2 * short.seconds
    assert again.seconds == pytest.approx(short.seconds, abs=0.05)


@needs_espeak
def test_pyttsx3_style_and_voices(espeak: Pyttsx3TTS) -> None:
    text = "One two three four five six."
    slow = espeak.synthesize(text, SpeechStyle(rate=120)).seconds
    fast = espeak.synthesize(text, SpeechStyle(rate=240)).seconds
    assert fast < 0.7 * slow
    quiet = espeak.synthesize(text, SpeechStyle(volume=0.3))
    loud = espeak.synthesize(text, SpeechStyle(volume=1.0))
    assert rms(quiet) < 0.6 * rms(loud)
    assert "gmw/en-us" in espeak.voices()
    us = espeak.synthesize(text, SpeechStyle(voice="gmw/en-us"))
    assert us.seconds > 0.5
    assert espeak.synthesize("...", NORMAL).seconds == 0.0
    with pytest.raises(AudioError, match="no voice 'klingon'"):
        Pyttsx3TTS("klingon")


@needs_espeak
def test_pyttsx3_from_threads_takes_turns(espeak: Pyttsx3TTS) -> None:
    results: dict[int, float] = {}

    def say(i: int) -> None:
        results[i] = espeak.synthesize("Hello there." if i % 2 else "Good morning to you.",
                                       NORMAL).seconds

    threads = [threading.Thread(target=say, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results[1] == pytest.approx(results[3], abs=0.05)
    assert results[0] == pytest.approx(results[2], abs=0.05)
    assert results[0] != pytest.approx(results[1], abs=0.05)
