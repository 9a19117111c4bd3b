"""The voice loop end to end with the real speech stack: Piper speaks her replies,
faster-whisper (tiny.en) hears the user, Silero finds the turns. The user's
utterances are synthesized here, with Piper and with espeak-ng
(tests/voicedata.py); the language model is the scripted FakeLLM, so the test
checks the voice pipeline, not the model's wit.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from voicedata import speech

from companion.testing import FakeLLM, open_test_companion
from companion.voice.audio import MIC_RATE, Audio, read_wav, write_wav
from companion.voice.devices import VirtualDevice
from companion.voice.loop import BargeIn, Heard, VoiceLoop
from companion.voice.stt import load_stt
from companion.voice.tts import load_tts
from companion.voice.vad import load_vad

LONG = (
    "I love that question. My garden has tomatoes along the fence and basil right "
    "beside them. In the spring I planted peas, and they climbed all the way up the "
    "trellis. The strawberries were a disaster this year, the birds ate every one. "
    "Next year I want to try garlic and maybe some potatoes."
)


def clip(text: str, engine: str) -> Audio:
    return speech(text, engine).resampled(MIC_RATE)  # type: ignore[arg-type]


def sound_onset(audio: Audio, level: float = 0.02) -> float:
    return float(np.flatnonzero(np.abs(audio.samples) > level)[0] / audio.rate)


def rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(home / "companion.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_voice_cli_on_wav_files(companion_home: Path, tmp_path: Path) -> None:
    """`companion voice --input-wav` hears Piper and espeak-ng speech, answers aloud,
    writes the audio, and the turns are in the database afterwards."""
    name = clip("My name is Theo and I love the piano.", "piper")
    first = write_wav(tmp_path / "in" / "1.wav", name)
    second = write_wav(tmp_path / "in" / "2.wav", clip("My sister lives in Boston.", "espeak"))
    out, replies = tmp_path / "out", tmp_path / "replies"
    env = dict(os.environ, COMPANION_HOME=str(companion_home))
    done = subprocess.run(
        [sys.executable, "-m", "companion", "voice", "--model", "fake", "--user", "theo",
         "--input-wav", str(first), str(second), "--output-dir", str(out),
         "--save-audio", str(replies), "--tts", "piper", "--speed", "4", "--no-greeting"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stdout.splitlines() if line.startswith("you: ")]
    assert len(said) == 2, done.stdout
    users = [str(c).lower() for (c,) in rows(
        companion_home, "select content from turns where role='user' order by id")]
    assert len(users) == 2
    assert "theo" in users[0] and "piano" in users[0]
    assert "sister" in users[1] and "boston" in users[1]
    assistant = rows(companion_home,
                     "select content, interrupted from turns where role='assistant' order by id")
    assert len(assistant) == 2 and all(i == 0 for _, i in assistant)
    assert f"Samantha: {assistant[0][0]}" in done.stdout
    facts = " ".join(str(t) for (t,) in rows(companion_home, "select text from facts")).lower()
    assert "piano" in facts  # memory took the fact from the spoken turn
    spoken = read_wav(out / "speaker.wav")
    assert np.abs(spoken.samples).max() > 0.05 and read_wav(out / "mic.wav").seconds > 4
    assert len(sorted(replies.glob("reply-*.wav"))) == 2
    events = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("heard") == 2 and kinds.count("first_audio") == 2
    assert kinds.count("reply_done") == 2


def test_barge_in_with_real_speech(companion_home: Path) -> None:
    """espeak-ng speech over her Piper reply (heard through a simulated echo)
    stops her within 200 ms; her reply is stored as far as she got, marked
    interrupted, and what the user said over her is the next turn."""
    question = clip("Tell me about your garden.", "piper")
    over = clip("Wait, stop. What about the potatoes?", "espeak")
    at = 10.0
    llm = FakeLLM([LONG, "Sorry, go on."])
    companion = open_test_companion(companion_home, llm=llm, user="theo")
    device = VirtualDevice([question, (at, over)], speed=2.0, echo_gain=0.4,
                           echo_delay_ms=40, echo_decay_ms=30, noise=0.0005)
    loop = VoiceLoop(companion, device, load_stt("auto"), load_tts("piper"), load_vad("silero"))
    try:
        loop.run(greet=False)
        turns = [(t.role, t.content, t.interrupted) for t in companion.history()]
    finally:
        device.close()
        companion.close()
    heard = [e.text for e in loop.events if isinstance(e, Heard)]
    assert len(heard) == 2 and "garden" in heard[0].lower(), heard
    assert "potato" in heard[1].lower(), heard
    barge = [e for e in loop.events if isinstance(e, BargeIn)]
    assert len(barge) == 1, loop.events
    onset = at + sound_onset(over)
    stops = [t for t in device.stops if t >= onset - 0.05]
    assert stops and stops[0] - onset <= 0.2, (stops, onset)
    assert [r for r, _, _ in turns] == ["user", "assistant", "user", "assistant"]
    cut = turns[1]
    assert cut[2] is True and cut[1] == barge[0].spoken
    assert 0 < len(cut[1]) < len(LONG) and LONG.startswith(cut[1])
    assert "potato" in turns[2][1].lower()


@pytest.mark.parametrize("engine", ["piper", "espeak"])
def test_her_echo_alone_never_stops_her(companion_home: Path, engine: str) -> None:
    llm = FakeLLM([LONG])
    companion = open_test_companion(companion_home, llm=llm, user="theo")
    device = VirtualDevice([clip("Tell me about your garden.", engine)], speed=4.0,
                           echo_gain=0.5, echo_delay_ms=60, echo_decay_ms=40, noise=0.0005)
    loop = VoiceLoop(companion, device, load_stt("auto"), load_tts("piper"), load_vad("silero"))
    try:
        loop.run(greet=False)
        turns = [(t.role, t.content, t.interrupted) for t in companion.history()]
    finally:
        device.close()
        companion.close()
    assert not [e for e in loop.events if isinstance(e, BargeIn)]
    assert turns[-1] == ("assistant", LONG, False)
    assert loop.guard.report().user_blocks == 0
