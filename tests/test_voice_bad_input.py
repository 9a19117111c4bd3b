"""The voice loop on bad input: a minute of talk, an hour of silence, clipping, a
forced sample rate, a turn model that breaks; and speculation cancelled cleanly."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from companion.testing import FakeLLM, open_test_companion
from companion.voice.audio import MIC_RATE, Audio
from companion.voice.base import Transcript
from companion.voice.devices import VirtualDevice
from companion.voice.loop import Heard, Ignored, Notice, VoiceLoop
from companion.voice.stt import FakeSTT
from companion.voice.tts import FakeTTS
from companion.voice.turn import ScriptedTurn
from companion.voice.vad import EnergyVAD


def voice(seconds: float, *, seed: int = 1, level: float = 0.3) -> np.ndarray:
    """Speech-like sound: noise with a syllable rhythm."""
    rng = np.random.default_rng(seed)
    n = round(seconds * MIC_RATE)
    t = np.arange(n) / MIC_RATE
    x = np.convolve(rng.normal(0.0, 1.0, n), np.ones(4) / 4, mode="same")
    x = x * (0.65 + 0.35 * np.sin(2 * np.pi * 4.0 * t))
    return (x / np.max(np.abs(x)) * level).astype(np.float32)


class RecordingSTT(FakeSTT):
    """FakeSTT that keeps the audio it was given."""

    def __init__(self, transcripts: list[str]) -> None:
        super().__init__(transcripts)
        self.audio: list[Audio] = []

    def transcribe(self, audio: Audio):  # type: ignore[no-untyped-def]
        self.audio.append(audio)
        return super().transcribe(audio)


class LengthSTT(FakeSTT):
    """Says how long the audio was: "Heard 30 seconds." """

    def transcribe(self, audio: Audio):  # type: ignore[no-untyped-def]
        return Transcript(f"Heard {round(audio.seconds)} seconds.", audio.seconds)


def talk(home: Path, inputs: list[Audio | tuple[float, Audio]], stt: FakeSTT, *,
         llm: FakeLLM | None = None, **kw: object) -> tuple[VoiceLoop, list[tuple[str, str]]]:
    device_kw = {k: kw.pop(k) for k in ("rate", "record", "speed", "tail_s") if k in kw}
    device_kw.setdefault("speed", 64.0)
    companion = open_test_companion(home, llm=llm or FakeLLM(), user="theo")
    device = VirtualDevice(inputs, reply_timeout_s=5.0, **device_kw)  # type: ignore[arg-type]
    loop = VoiceLoop(companion, device, stt, FakeTTS(), EnergyVAD(), **kw)  # type: ignore[arg-type]
    try:
        loop.run(greet=False)
        return loop, [(t.role, t.content) for t in companion.history()]
    finally:
        device.close()
        companion.close()


def test_a_minute_of_talk_is_one_turn_and_nothing_is_lost(companion_home: Path) -> None:
    """Sixty seconds of Piper sentences back to back, through Silero: cut at 30 s,
    carried, and heard as one turn."""
    from voicedata import speech

    from companion.voice.vad import SileroVAD

    sentences = ["I was thinking about going to the market tomorrow morning with my sister.",
                 "The movie we watched last night was much better than I expected it to be.",
                 "My neighbor has a big brown dog that barks at every car going by."]
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < 60 * MIC_RATE:
        parts.append(speech(sentences[len(parts) % 3]).resampled(MIC_RATE).samples)
    stt = LengthSTT()
    companion = open_test_companion(companion_home, llm=FakeLLM(), user="theo")
    device = VirtualDevice([Audio(np.concatenate(parts), MIC_RATE)], speed=64.0,
                           reply_timeout_s=5.0)
    loop = VoiceLoop(companion, device, stt, FakeTTS(), SileroVAD(), speculate=False)
    try:
        loop.run(greet=False)
        turns = [(t.role, t.content) for t in companion.history()]
    finally:
        device.close()
        companion.close()
    heard = [e for e in loop.events if isinstance(e, Heard)]
    assert len(heard) == 1 and turns[0] == ("user", heard[0].text)
    # one turn of pieces cut every 30 s and carried: the whole minute and more
    pieces = [int(n) for n in re.findall(r"(\d+) seconds", heard[0].text)]
    assert pieces[:2] == [30, 30] and sum(pieces) >= len(np.concatenate(parts)) / MIC_RATE - 1


def test_an_hour_of_silence_then_a_turn(companion_home: Path) -> None:
    stt = FakeSTT(["Are you still there?"])
    clip = Audio(voice(1.2), MIC_RATE)
    loop, turns = talk(companion_home, [(3600.0, clip)], stt, speed=math.inf, record=False,
                       speculate=False)
    heard = [e for e in loop.events if isinstance(e, Heard)]
    assert len(heard) == 1 and 3599.5 <= heard[0].started <= 3601.0
    assert not [e for e in loop.events if isinstance(e, Ignored)]  # the hour was just silence
    assert turns[0] == ("user", "Are you still there?") and turns[1][0] == "assistant"


def test_clipped_and_broken_samples_are_cleaned(companion_home: Path) -> None:
    loud = voice(1.5, level=4.0)  # clipping far past full scale
    loud[8000:8100] = np.nan
    stt = RecordingSTT(["That was loud."])
    loop, turns = talk(companion_home, [Audio(loud, MIC_RATE)], stt, speculate=False)
    assert [e.text for e in loop.events if isinstance(e, Heard)] == ["That was loud."]
    samples = stt.audio[-1].samples
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0
    assert turns[0] == ("user", "That was loud.")


def test_a_forced_48khz_device(companion_home: Path) -> None:
    stt = RecordingSTT(["Hello at 48 kilohertz."])
    clip = Audio(voice(1.2), MIC_RATE)
    loop, turns = talk(companion_home, [clip], stt, rate=48_000, speculate=False)
    heard = [e for e in loop.events if isinstance(e, Heard)]
    assert [h.text for h in heard] == ["Hello at 48 kilohertz."]
    got = stt.audio[-1]
    assert got.rate == MIC_RATE and 1.2 <= got.seconds <= 1.9
    assert 0.4 <= heard[0].started <= 0.7 and turns[1][0] == "assistant"


class Broken:
    def __call__(self, audio: np.ndarray) -> float:
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION\nbad graph")


def test_a_turn_model_that_breaks_falls_back_to_silence(companion_home: Path) -> None:
    stt = FakeSTT(["First words.", "Second turn."])
    clips = [Audio(voice(1.0), MIC_RATE), Audio(voice(1.0, seed=2), MIC_RATE)]
    loop, turns = talk(companion_home, clips, stt, turn=Broken(), speculate=False)  # type: ignore[arg-type]
    notices = [e.text for e in loop.events if isinstance(e, Notice)]
    assert len(notices) == 1 and "silence only" in notices[0] and "\n" not in notices[0]
    assert [t for t in turns if t[0] == "user"] == [("user", "First words."),
                                                    ("user", "Second turn.")]


def test_speculation_is_cancelled_when_the_user_goes_on(companion_home: Path) -> None:
    """Said: "I went to the market." (450 ms pause) "with my sister." The pause's text is
    read by the model, thrown away when speech resumes; only the whole turn is stored."""
    part = "I went to the market."
    whole = "I went to the market with my sister."
    stt = FakeSTT([part, whole])
    llm = FakeLLM()
    said = np.concatenate([voice(1.0), np.zeros(int(0.45 * MIC_RATE), np.float32),
                           voice(0.8, seed=4)])
    loop, turns = talk(companion_home, [Audio(said, MIC_RATE)], stt, llm=llm,
                       turn=ScriptedTurn(default=0.9))
    spec = loop.speculator
    assert (spec.hits, spec.misses) == (1, 1)
    # read ahead: the part, then the whole; then the reply to the whole
    assert [m[-1].content for m in llm.prepared] == [part, whole]
    assert [c[-1].content for c in llm.calls] == [whole]
    assert [t for t in turns if t[0] == "user"] == [("user", whole)]
    assert len(turns) == 2  # nothing of the cancelled speculation was stored
