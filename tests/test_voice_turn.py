"""End of turn with a turn model, recognition from the pause, speculation, odd input."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from companion.errors import AudioError
from companion.llm.fake import FakeLLM
from companion.types import GenerationParams, Message
from companion.voice.audio import MIC_RATE, Audio, StreamResampler
from companion.voice.endpoint import Endpointer, Pause, Resume, SpeechStart, TurnVerdict, Utterance
from companion.voice.speculate import Speculator
from companion.voice.streaming import StreamingRecognizer
from companion.voice.stt.fake import FakeSTT
from companion.voice.stt.whisper import without_repeats
from companion.voice.turn import (
    MODEL_FILE,
    TURN_PLANS,
    WHEEL_MEMBER,
    ScriptedTurn,
    WithTranscript,
    complete,
    install,
    load_turn_model,
    log_mel,
    unfinished,
)
from companion.voice.vad import EnergyVAD


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * MIC_RATE)) / MIC_RATE
    return (level * np.sin(2 * np.pi * 220 * t) * (0.7 + 0.3 * np.sin(2 * np.pi * 4 * t))).astype(
        np.float32
    )


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * MIC_RATE), dtype=np.float32)


def stream(ep: Endpointer, *parts: np.ndarray) -> list[object]:
    data = np.concatenate([silence(0.5), *parts, silence(1.5)])
    events: list[object] = []
    for i in range(0, len(data), 512):
        events += ep.push(data[i : i + 512])
    return events


def test_turn_model_ends_the_turn_after_a_short_silence() -> None:
    turn = ScriptedTurn([0.9])
    ep = Endpointer(EnergyVAD(), turn=turn, turn_checks=((200, 0.5),), end_silence_ms=600)
    events = stream(ep, tone(1.0))
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStart, Pause, TurnVerdict, Utterance]
    utt = events[-1]
    verdict = events[2]
    assert isinstance(utt, Utterance) and isinstance(verdict, TurnVerdict)
    # reported ~200 ms after the speech stopped, not 600
    assert 0.15 <= verdict.time - utt.ended <= 0.3
    assert len(turn.calls) == 1 and turn.calls[0] >= 1.0


def test_unfinished_verdict_waits_for_the_long_silence_across_a_pause() -> None:
    turn = ScriptedTurn([0.1, 0.9])
    ep = Endpointer(EnergyVAD(), turn=turn, turn_checks=((200, 0.5),), end_silence_ms=600)
    events = stream(ep, tone(1.0), silence(0.45), tone(0.8))
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStart, Pause, TurnVerdict, Resume, Pause, TurnVerdict, Utterance]
    utt = events[-1]
    assert isinstance(utt, Utterance) and utt.audio.seconds > 2.0  # both parts, one turn


def test_without_a_model_the_silence_rule_applies() -> None:
    ep = Endpointer(EnergyVAD(), end_silence_ms=600)
    events = stream(ep, tone(1.0), silence(0.45), tone(0.8))
    assert [type(e) for e in events].count(Utterance) == 1


def test_the_utterance_is_the_audio_already_transcribed_at_the_pause() -> None:
    ep = Endpointer(EnergyVAD(), end_silence_ms=600)
    events = stream(ep, tone(1.0))
    pause = next(e for e in events if isinstance(e, Pause))
    utt = next(e for e in events if isinstance(e, Utterance))
    assert isinstance(pause, Pause) and isinstance(utt, Utterance)
    assert np.array_equal(pause.audio.samples, utt.audio.samples)


@pytest.mark.parametrize(
    ("text", "cut"),
    [("I think I need to call my friend because...", True), ("My brother is moving to a", True),
     ("Good night, I'll talk to you tomorrow.", False), ("Do you like music?", False),
     ("I went to the", True), ("", False)],
)
def test_unfinished(text: str, cut: bool) -> None:
    assert unfinished(text) is cut


def test_a_finished_verdict_stands_only_on_a_complete_transcript() -> None:
    texts = iter(["I was going to the", "Hi Samantha,", "", "I was going to the shop.",
                  "Do you like music?"])
    judge = WithTranscript(ScriptedTurn([0.9] * 5), lambda _a: next(texts))
    assert [judge(silence(1.0)) for _ in range(5)] == [0.0, 0.0, 0.0, 0.9, 0.9]
    assert judge.vetoed == 3  # a dangling word, a comma, no transcript yet


@pytest.mark.parametrize(
    ("text", "done"),
    [("Good night, I'll talk to you tomorrow.", True), ("Do you like music?", True),
     ("Hi Samantha,", False), ("I went to the.", False), ("my name is", False),
     ('He said "stop!"', True), ("", False)],
)
def test_complete(text: str, done: bool) -> None:
    assert complete(text) is done


def test_checks_at_several_silences_and_the_fallback() -> None:
    # asked at 200 ms (no), at 400 ms (yes): the turn ends ~400 ms after the speech
    turn = ScriptedTurn([0.3, 0.8])
    ep = Endpointer(EnergyVAD(), turn=turn, turn_checks=((200, 0.5), (400, 0.7)),
                    end_silence_ms=800)
    events = stream(ep, tone(1.0))
    verdicts = [e for e in events if isinstance(e, TurnVerdict)]
    utt = next(e for e in events if isinstance(e, Utterance))
    assert isinstance(utt, Utterance) and len(verdicts) == 2
    assert 0.35 <= verdicts[-1].time - utt.ended <= 0.45
    # both doubted: the fallback silence ends it
    ep = Endpointer(EnergyVAD(), turn=ScriptedTurn([0.3, 0.6]),
                    turn_checks=((200, 0.5), (400, 0.7)), end_silence_ms=800)
    events = stream(ep, tone(1.0))
    utt = next(e for e in events if isinstance(e, Utterance))
    assert isinstance(utt, Utterance) and events[-1] is utt
    assert [type(e) for e in events].count(TurnVerdict) == 2


def test_turn_plans() -> None:
    assert TURN_PLANS["silence"].checks == ()
    for plan in TURN_PLANS.values():
        assert all(ms < plan.fallback_ms for ms, _p in plan.checks)


def test_without_repeats() -> None:
    assert without_repeats("Hey, how was your day? Hey, how was your day? Hey, how") == \
        "Hey, how was your day?"
    assert without_repeats("It is late. Go to bed.") == "It is late. Go to bed."


def test_log_mel_shape_and_range() -> None:
    feats = log_mel(tone(3.0))
    assert feats.shape == (80, 800) and feats.dtype == np.float32
    assert feats.max() - feats.min() <= 2.0 + 1e-5  # 8 decades of power / 4
    assert np.allclose(feats[:, 0], feats.min())  # the 5 s of padding in front are the floor


def test_smart_turn_hears_a_finished_question_and_an_unfinished_phrase() -> None:
    """The real model (skipped until installed) on Piper speech."""
    from voicedata import speech

    from companion.voice.turn import SmartTurn, model_path

    if not model_path().is_file():
        pytest.skip("Smart Turn is not installed (python -m companion.voice.turn install WHEEL)")
    model = SmartTurn()
    done = speech("Do you remember where my sister lives?").resampled(MIC_RATE).samples
    assert model(np.concatenate([done, silence(0.2)])) > 0.5
    cut = speech("When I finish work today I would like to cook").resampled(MIC_RATE).samples
    assert model(np.concatenate([cut[: len(cut) * 2 // 3], silence(0.2)])) < 0.5


def test_missing_or_broken_model_falls_back_with_one_line(tmp_path: Path) -> None:
    model, why = load_turn_model(tmp_path / "nothing.onnx")
    assert model is None and "silence only" in why and "\n" not in why
    broken = tmp_path / MODEL_FILE
    broken.write_bytes(b"not an onnx graph")
    model, why = load_turn_model(broken)
    assert model is None and "cannot run" in why and "\n" not in why


def test_install_checks_the_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "pipecat_ai-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(WHEEL_MEMBER, b"tampered")
    with pytest.raises(AudioError, match="SHA-256"):
        install(wheel, tmp_path / "out.onnx")
    with pytest.raises(AudioError, match="no such file"):
        install(tmp_path / "missing.whl", tmp_path / "out.onnx")
    (tmp_path / "junk.whl").write_text("junk")
    with pytest.raises(AudioError, match="not a readable wheel"):
        install(tmp_path / "junk.whl", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_streaming_recognizer_runs_jobs_off_the_thread() -> None:
    stt = FakeSTT(["partial words", "final words"])
    rec = StreamingRecognizer(stt)
    assert rec.partial(Audio(tone(0.7), MIC_RATE))
    job = rec.final(Audio(tone(1.2), MIC_RATE))
    assert job.wait(5.0) == "final words"
    assert rec.text == "partial words" and rec.partials == 1 and rec.finals == 1
    assert stt.seconds == pytest.approx([0.7, 1.2])
    rec.close()


def _prompt_for(text: str) -> tuple[Sequence[Message], GenerationParams]:
    return [Message("system", "You are kind."), Message("user", text)], GenerationParams()


def test_speculation_prefills_without_storing_and_counts() -> None:
    llm = FakeLLM(["x", "y", "z"])
    spec = Speculator(llm, _prompt_for)
    assert spec.start("hello there")
    assert spec.settle("hello there") is True
    assert spec.start("I went")
    spec.cancel()
    spec.wait(5.0)
    assert spec.start("I went out")
    assert spec.settle("I went out today") is False
    assert (spec.hits, spec.misses) == (1, 2)
    # each prefill read the would-be prompt ahead (prepare), with no reply used up
    assert [m[-1].content for m in llm.prepared] == ["hello there", "I went", "I went out"]
    assert llm.calls == []
    assert not Speculator(llm, None).start("anything")


def test_speculation_without_prepare_asks_for_one_token() -> None:
    class Streaming:
        """A backend with no ``prepare``: the speculation streams one token."""

        def __init__(self) -> None:
            self.inner = FakeLLM(["x"])

        def stream(self, messages, params):  # type: ignore[no-untyped-def]
            return self.inner.stream(messages, params)

        def count_tokens(self, text: str) -> int:
            return self.inner.count_tokens(text)

    backend = Streaming()
    spec = Speculator(backend, _prompt_for)  # type: ignore[arg-type]
    assert spec.start("hello there") and spec.settle("hello there")
    assert [c[-1].content for c in backend.inner.calls] == ["hello there"]
    assert backend.inner.params[0].max_tokens == 1


def test_stream_resampler_matches_a_forced_rate() -> None:
    rs = StreamResampler(48_000, MIC_RATE)
    t = np.arange(48_000) / 48_000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = np.concatenate([rs(x[i : i + 1000]) for i in range(0, len(x), 1000)])
    assert abs(len(out) - MIC_RATE) <= 100
    spectrum = np.abs(np.fft.rfft(out[2000:14000]))
    assert abs(np.argmax(spectrum) * MIC_RATE / 12000 - 440) < 5
