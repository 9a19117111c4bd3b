"""The voice loop on the virtual device with fakes: scripted model, recognizer and voice.

Stream times are checked, not wall-clock times: the virtual device runs faster
than real time, and everything the loop reports is in seconds of stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from companion.dialog import Companion
from companion.testing import FakeLLM, open_test_companion
from companion.voice.audio import MIC_RATE, Audio
from companion.voice.base import SpeechStyle
from companion.voice.devices import VirtualDevice
from companion.voice.loop import BargeIn, FirstAudio, Heard, Ignored, ReplyDone, VoiceLoop
from companion.voice.speaker import Speaker
from companion.voice.stt import FakeSTT
from companion.voice.talk import ScheduledTalk
from companion.voice.tts import FakeTTS
from companion.voice.vad import EnergyVAD

SPEED = 16.0
LONG = (
    "I have been thinking about your garden all week. The tomatoes should go in the "
    "sunny corner by the fence. Basil likes to grow right beside them, you know. "
    "And in the autumn we could plant garlic for next year. What do you think about that?"
)


def voice(seconds: float, *, seed: int = 1, level: float = 0.3) -> Audio:
    """Speech-like sound: broadband noise with a syllable rhythm, loud from its first sample."""
    rng = np.random.default_rng(seed)
    n = round(seconds * MIC_RATE)
    t = np.arange(n) / MIC_RATE
    noise = np.convolve(rng.normal(0.0, 1.0, n), np.ones(4) / 4, mode="same")
    x = noise * (0.65 + 0.35 * np.sin(2 * np.pi * 4.0 * t))
    return Audio((x / np.max(np.abs(x)) * level).astype(np.float32), MIC_RATE)


class NoiseTTS(FakeTTS):
    """Her voice as broadband speech-like sound (harder to cancel than FakeTTS's tone)."""

    def synthesize(self, text: str, style: SpeechStyle) -> Audio:
        tone = super().synthesize(text, style)
        return voice(tone.seconds, seed=len(text), level=0.5 * style.volume)


@dataclass
class Rig:
    companion: Companion
    device: VirtualDevice
    stt: FakeSTT
    tts: FakeTTS
    llm: FakeLLM
    loop: VoiceLoop
    events: list[object] = field(default_factory=list)

    def of(self, kind: type) -> list[object]:
        return [e for e in self.loop.events if isinstance(e, kind)]

    def turns(self) -> list[tuple[str, str, bool]]:
        return [(t.role, t.content, t.interrupted) for t in self.companion.history()]


_open: list[Rig] = []


@pytest.fixture(autouse=True)
def _close_rigs() -> Iterator[None]:
    yield
    while _open:
        r = _open.pop()
        r.device.close()
        r.companion.close()


def rig(
    home: Path,
    inputs: list[Audio | tuple[float, Audio]],
    *,
    replies: list[str],
    transcripts: list[str],
    tts: FakeTTS | None = None,
    llm_delay: float = 0.0,
    half_duplex: bool = False,
    push_to_talk: bool = False,
    **device: object,
) -> Rig:
    llm = FakeLLM(replies, delay=llm_delay)
    companion = open_test_companion(home, llm=llm, user="theo")
    dev = VirtualDevice(inputs, speed=SPEED, **device)  # type: ignore[arg-type]
    stt = FakeSTT(transcripts)
    fake_tts = tts or FakeTTS()
    talk = ScheduledTalk(lambda: dev.placed, before=0.05, after=0.3) if push_to_talk else None
    # no speculation: its one-token calls would take the scripted replies
    loop = VoiceLoop(companion, dev, stt, fake_tts, EnergyVAD(), half_duplex=half_duplex,
                     push_to_talk=talk, speculate=False)
    _open.append(Rig(companion, dev, stt, fake_tts, llm, loop))
    return _open[-1]


def run(r: Rig, *, greet: bool = False) -> None:
    r.loop.run(greet=greet)


def test_a_turn_is_heard_answered_aloud_and_stored(companion_home: Path) -> None:
    r = rig(companion_home, [voice(1.2)], replies=["Hello Theo. Nice to hear you."],
            transcripts=["Hi, I'm Theo."])
    run(r)
    heard = r.of(Heard)
    assert [h.text for h in heard] == ["Hi, I'm Theo."]  # type: ignore[attr-defined]
    assert r.tts.texts == ["Hello Theo.", "Nice to hear you."]
    assert r.turns() == [("user", "Hi, I'm Theo.", False),
                         ("assistant", "Hello Theo. Nice to hear you.", False)]
    first = r.of(FirstAudio)[0]
    times = first.times  # type: ignore[attr-defined]
    assert times.speech_end <= times.detected <= times.first_audio
    assert times.first_audio == pytest.approx(r.device.plays[0], abs=0.07)


def test_first_sentence_plays_before_the_reply_is_generated(companion_home: Path) -> None:
    # 30 ms a word: the reply takes 1.4 s of wall time (11 s of stream) to generate.
    r = rig(companion_home, [voice(1.0)], replies=[LONG], transcripts=["tell me"],
            llm_delay=0.03, tail_s=15.0)
    run(r)
    speech = r.loop.speaker.current
    assert speech is not None and speech.times.first_queued is not None
    assert speech.times.text_done is not None
    assert speech.times.first_queued < speech.times.text_done - 0.5
    # her first clause (six words here) is synthesized alone, then sentences follow
    assert r.tts.texts[:2] == ["I have been thinking about your", "garden all week."]
    assert len(r.tts.texts) == 6 and r.turns()[-1] == ("assistant", LONG, False)


def _barge_in_rig(home: Path, **kw: object) -> Rig:
    # She answers the first turn at ~2.5 s with ~14 s of speech; the user talks over her at 6 s.
    return rig(home, [voice(1.0), (6.0, voice(1.5, seed=7))], replies=[LONG, "Oh, sorry."],
               transcripts=["tell me about the garden", "wait, what about potatoes"],
               **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("echo_gain", [0.0, 0.4])
def test_barge_in_stops_her_within_200ms_and_keeps_what_was_said(
    companion_home: Path, echo_gain: float
) -> None:
    r = _barge_in_rig(companion_home, tts=NoiseTTS(), echo_gain=echo_gain, echo_delay_ms=40)
    run(r)
    onset = r.device.placed[1][0]
    barge = r.of(BargeIn)
    assert len(barge) == 1
    stops = [t for t in r.device.stops if t >= onset]
    assert stops and stops[0] - onset <= 0.2, (stops, onset)
    # Nothing of hers was played from the stop to her next reply (one block of grace).
    speaker = np.concatenate(r.device._speaker_track)
    resumed = min(t for t in r.device.plays if t >= stops[0])  # her next reply's first clip
    assert not speaker[round(stops[0] * MIC_RATE) + 512:round(resumed * MIC_RATE)].any()
    turns = r.turns()
    assert [t[0] for t in turns] == ["user", "assistant", "user", "assistant"]
    cut = turns[1]
    spoken = barge[0].spoken  # type: ignore[attr-defined]
    assert cut == ("assistant", spoken, True)
    assert 0 < len(spoken.split()) < len(LONG.split())
    assert LONG.startswith(spoken)
    # What they said over her became the next turn, onset included.
    assert turns[2] == ("user", "wait, what about potatoes", False)
    assert r.stt.seconds[1] >= 1.5
    assert turns[3] == ("assistant", "Oh, sorry.", False)


@pytest.mark.parametrize("echo_gain", [0.3, 0.5])
def test_her_own_echo_does_not_interrupt_her(companion_home: Path, echo_gain: float) -> None:
    r = rig(companion_home, [voice(1.0)], replies=[LONG], transcripts=["tell me"],
            tts=NoiseTTS(), echo_gain=echo_gain, echo_delay_ms=40, echo_decay_ms=30, noise=0.001)
    run(r)
    assert r.of(BargeIn) == [] and r.of(Ignored) == []
    assert r.turns()[-1] == ("assistant", LONG, False)
    assert r.loop.guard.report().user_blocks == 0
    assert not r.loop.guard.half_duplex


def test_half_duplex_ignores_speech_while_she_speaks(companion_home: Path) -> None:
    r = _barge_in_rig(companion_home, half_duplex=True)
    run(r)
    assert r.of(BargeIn) == []
    assert r.turns() == [("user", "tell me about the garden", False),
                         ("assistant", LONG, False)]
    assert len(r.stt.seconds) == 1  # the overlapping speech never reached the recognizer


def test_noise_is_ignored_without_a_model_call(companion_home: Path) -> None:
    r = rig(companion_home, [voice(0.8), voice(0.8, seed=3)], replies=["Yes?"],
            transcripts=["[BLANK_AUDIO]", "  ...  "], reply_timeout_s=2.0)
    run(r)
    assert len(r.of(Ignored)) == 2 and r.llm.calls == []
    assert r.turns() == []


def test_push_to_talk_takes_what_is_said_while_the_key_is_held(companion_home: Path) -> None:
    r = rig(companion_home, [voice(1.0), (6.0, voice(1.0, seed=5))], replies=[LONG, "Okay."],
            transcripts=["first", "second"], push_to_talk=True)
    run(r)
    assert r.stt.seconds[0] == pytest.approx(1.0 + 0.05 + 0.3, abs=0.1)
    assert len(r.of(BargeIn)) == 1  # pressing the key while she spoke cut her off
    assert [t[0] for t in r.turns()] == ["user", "assistant", "user", "assistant"]
    assert r.turns()[1][2] is True


def test_the_greeting_is_spoken_and_a_reply_waits_for_it(companion_home: Path) -> None:
    r = rig(companion_home, [(12.0, voice(1.0))], replies=["Good."], transcripts=["fine"])
    run(r, greet=True)
    done = r.of(ReplyDone)
    assert len(done) == 2 and not any(d.interrupted for d in done)  # type: ignore[attr-defined]
    assert r.turns()[0][0] == "assistant"  # the persona's first message


def test_speaker_reports_the_spoken_part_and_saves_it(tmp_path: Path) -> None:
    device = VirtualDevice([], speed=SPEED, tail_s=30.0)
    speaker = Speaker(device, FakeTTS(), save_dir=tmp_path / "replies")
    frames = device.frames()
    speech = speaker.start(iter(["One two three four. ", "Five six seven eight."]))
    while not r_played(device, 1.8):
        next(frames)
    speech.stop()
    spoken = speech.spoken_text()
    assert spoken.startswith("One two three four.") and spoken != "One two three four."
    assert "Five six seven eight." not in spoken
    assert speech.saved is not None and speech.saved.exists()
    device.close()


def r_played(device: VirtualDevice, seconds: float) -> bool:
    return sum(int(np.count_nonzero(b)) for b in device._speaker_track) >= seconds * MIC_RATE


def test_voice_cli_without_a_device_says_so_in_one_line(companion_home: Path) -> None:
    env = dict(os.environ, COMPANION_HOME=str(companion_home))
    out = subprocess.run([sys.executable, "-m", "companion", "voice", "--model", "fake"],
                         capture_output=True, text=True, env=env, timeout=60)
    if out.returncode == 0:  # pragma: no cover - a machine with a microphone
        pytest.skip("this machine has an audio input device")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("companion: error: "), out.stderr
    assert "--input-wav" in lines[0] and "Traceback" not in out.stderr


def test_voice_mode_decodes_on_one_thread_unless_set() -> None:
    from types import SimpleNamespace

    from companion.cli.voice import voice_config, voice_decoding
    from companion.config import Config

    assert voice_config(Config()).threads is None  # the prefill keeps every core
    assert voice_config(Config(model="llamacpp:smollm2-135m-instruct")).threads == 1
    assert voice_config(Config(threads=3)).threads == 3
    llm = SimpleNamespace(decode_threads=None)
    voice_decoding(llm, Config())
    assert llm.decode_threads == 1
    pinned = SimpleNamespace(decode_threads=None)
    voice_decoding(pinned, Config(threads=2))
    assert pinned.decode_threads is None


def test_chat_speak_without_a_device_notes_it_and_saves_the_replies(
    companion_home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('tts = "null"\n')
    replies = tmp_path / "replies"
    env = dict(os.environ, COMPANION_HOME=str(companion_home))
    out = subprocess.run(
        [sys.executable, "-m", "companion", "chat", "--model", "fake", "--user", "theo",
         "--config", str(config), "--speak", "--save-audio", str(replies)],
        input="I love jazz.\n", capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Samantha: ") == 2  # greeting + reply, printed as before
    notes = [line for line in out.stderr.splitlines() if line.startswith("(not speaking")]
    if notes:  # no sound card here: one line, and the replies are still saved
        assert len(notes) == 1 and str(replies) in notes[0]
    assert len(list(replies.glob("reply-*.wav"))) == 2
