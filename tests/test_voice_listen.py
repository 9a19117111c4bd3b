"""The listening side: VAD, end-of-turn detection, speech recognition, audio devices.

Speech comes from tests/voicedata.py (Piper and espeak-ng, cached on disk).
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from voicedata import speech

from companion.errors import AudioError
from companion.voice.audio import MIC_RATE, Audio, read_wav
from companion.voice.base import STT, VAD, AudioDevice
from companion.voice.devices import VirtualDevice
from companion.voice.endpoint import Endpointer, SpeechStart, Utterance
from companion.voice.soundcard import list_devices, open_microphone
from companion.voice.stt import FakeSTT, FasterWhisperSTT, load_stt
from companion.voice.vad import EnergyVAD, SileroVAD, load_vad
from companion.voice.wer import corpus_wer, wer

HELLO = "Hello there, how are you doing today?"
WEATHER = "I think it might rain later this afternoon."


def voice(text: str, engine: str = "piper") -> Audio:
    return speech(text, engine).resampled(MIC_RATE)  # type: ignore[arg-type]


def onset(audio: Audio, level: float = 0.02) -> tuple[float, float]:
    """Seconds where the clip's sound first and last exceeds ``level``."""
    loud = np.flatnonzero(np.abs(audio.samples) > level)
    return loud[0] / audio.rate, (loud[-1] + 1) / audio.rate


def frames_of(x: np.ndarray, n: int = 512) -> Iterator[np.ndarray]:
    for i in range(0, len(x) - n + 1, n):
        yield x[i : i + n]


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3) -> Audio:
    t = np.arange(round(seconds * MIC_RATE)) / MIC_RATE
    return Audio((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), MIC_RATE)


@pytest.fixture(scope="module")
def whisper() -> FasterWhisperSTT:
    return FasterWhisperSTT()


# -- VAD ---------------------------------------------------------------------


@pytest.mark.parametrize("make", [SileroVAD, EnergyVAD])
def test_vad_separates_speech_from_silence(make: type[SileroVAD] | type[EnergyVAD]) -> None:
    vad = make()
    assert isinstance(vad, VAD)
    clip = voice(HELLO)
    start, end = onset(clip)
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [np.zeros(MIC_RATE, np.float32), clip.samples, np.zeros(MIC_RATE, np.float32)]
    )
    x += rng.normal(0, 0.002, len(x)).astype(np.float32)  # a quiet room
    probs = np.array([vad(f) for f in frames_of(x)])
    t = np.arange(len(probs)) * 512 / MIC_RATE
    silent = (t < 0.9) | (t > 1 + end + 0.5)
    speaking = (t > 1 + start + 0.1) & (t < 1 + end - 0.1)
    assert probs[silent].max() < 0.3
    assert np.mean(probs[speaking] > 0.5) > 0.6


def test_silero_rejects_wrong_frame_size_and_load_vad_names() -> None:
    with pytest.raises(ValueError, match="512"):
        SileroVAD()(np.zeros(480, dtype=np.float32))
    assert isinstance(load_vad("auto"), SileroVAD)
    assert isinstance(load_vad("energy"), EnergyVAD)
    with pytest.raises(AudioError, match="unknown VAD"):
        load_vad("webrtc")


# -- Endpointer --------------------------------------------------------------


def test_endpointer_cuts_two_utterances_at_the_right_times() -> None:
    a, b = voice(HELLO), voice(WEATHER)
    stream = Audio.concat([Audio.silence(0.7), a, Audio.silence(1.5), b, Audio.silence(1.0)])
    truth = [
        (0.7 + onset(a)[0], 0.7 + onset(a)[1]),
        (0.7 + a.seconds + 1.5 + onset(b)[0], 0.7 + a.seconds + 1.5 + onset(b)[1]),
    ]
    ep = Endpointer(SileroVAD(), end_silence_ms=600)
    events: list[SpeechStart | Utterance] = []
    x, block, t = stream.samples, 700, 10.0  # odd block size, stream starting at 10 s
    for i in range(0, len(x), block):
        events += [e for e in ep.push(x[i : i + block], t + i / MIC_RATE)
                   if isinstance(e, SpeechStart | Utterance)]
    assert [type(e) for e in events] == [SpeechStart, Utterance, SpeechStart, Utterance]
    utterances = [e for e in events if isinstance(e, Utterance)]
    for u, (start, end) in zip(utterances, truth, strict=True):
        assert u.started == pytest.approx(t + start, abs=0.1)
        assert u.ended == pytest.approx(t + end, abs=0.1)
        assert not u.truncated
        # pre-roll (300 ms) + speech + tail (the 64 ms of silence that made the pause)
        assert u.audio.seconds == pytest.approx(u.ended - u.started + 0.364, abs=0.07)
    assert events[0] == SpeechStart(utterances[0].started)
    assert ep.end_silence_s == pytest.approx(0.608, abs=0.01)


def test_endpointer_truncates_long_speech_and_flushes_at_end_of_stream() -> None:
    clip = voice(HELLO)
    ep = Endpointer(SileroVAD(), max_utterance_s=1.0)
    events = ep.push(np.concatenate([np.zeros(8000, np.float32), clip.samples]))
    cut = [e for e in events if isinstance(e, Utterance)]
    assert cut and cut[0].truncated
    assert cut[0].ended - cut[0].started == pytest.approx(1.0, abs=0.04)
    assert ep.speaking  # the rest of the sentence is a new utterance, still open
    rest = ep.flush()
    assert len(rest) == 1 and isinstance(rest[0], Utterance) and not ep.speaking


def test_endpointer_onset_for_barge_in_ignores_short_clicks() -> None:
    ep = Endpointer(EnergyVAD(), start_ms=200)
    x = np.concatenate([np.zeros(16000, np.float32), tone(0.1).samples, np.zeros(8000, np.float32)])
    assert not ep.push(x) and not ep.speaking
    events = ep.push(tone(0.5).samples)
    assert len(events) == 1 and isinstance(events[0], SpeechStart) and ep.speaking


# -- speech recognition ------------------------------------------------------

SENTENCES = [
    "Good morning, did you sleep well last night?",
    "Can you remind me to call my mother on Sunday?",
    "I really enjoyed the movie we watched yesterday.",
    "What should I cook for dinner tonight?",
]


def test_whisper_recognizes_piper_and_espeak_speech(whisper: FasterWhisperSTT) -> None:
    assert isinstance(whisper, STT)
    piper = [(s, whisper.transcribe(speech(s, "piper")).text) for s in SENTENCES]
    espeak = [(s, whisper.transcribe(speech(s, "espeak")).text) for s in SENTENCES[:2]]
    assert corpus_wer(piper) <= 0.2, piper
    assert corpus_wer(espeak) <= 0.35, espeak
    result = whisper.transcribe(speech(SENTENCES[0]))  # 22.05 kHz in, resampled
    assert result.seconds == pytest.approx(speech(SENTENCES[0]).seconds, abs=0.01)


def test_whisper_hears_nothing_in_silence(whisper: FasterWhisperSTT) -> None:
    assert whisper.transcribe(Audio.silence(0.05)).text == ""


def test_load_stt_and_the_fake() -> None:
    fake = load_stt("fake")
    assert isinstance(fake, FakeSTT)
    fake.enqueue("hello", "bye")
    assert [fake.transcribe(Audio.silence(s)).text for s in (1.0, 0.5, 0.25)] == [
        "hello",
        "bye",
        "",
    ]
    assert fake.seconds == [1.0, 0.5, 0.25]
    with pytest.raises(AudioError, match="unknown speech recognizer"):
        load_stt("vosk")
    with pytest.raises(AudioError, match="cannot load Whisper model"):
        FasterWhisperSTT("/nonexistent/model", warm_up=False)


def test_wer() -> None:
    assert wer("Twenty-one, OK?", "21 okay") == 0.0
    assert wer("a b c d", "a x c") == 0.5
    assert corpus_wer([("a b", "a b"), ("c d", "")]) == 0.5


# -- the virtual device ------------------------------------------------------


def test_virtual_device_paces_places_and_records(tmp_path: Path) -> None:
    a = tone(0.5)
    dev = VirtualDevice(
        [a], lead_in_s=0.25, tail_s=0.5, reply_timeout_s=0.5, speed=4.0, output_dir=tmp_path
    )
    assert isinstance(dev, AudioDevice)
    start = time.monotonic()
    frames = list(dev.frames())
    wall = time.monotonic() - start
    dev.close()
    stream = len(frames) * 512 / MIC_RATE
    # no reply came: the stream ends reply_timeout after the input, then tail
    assert stream == pytest.approx(0.25 + 0.5 + 0.5 + 0.5, abs=0.07)
    assert wall == pytest.approx(stream / 4, abs=0.15)
    assert [f.time for f in frames] == pytest.approx(
        [i * 512 / MIC_RATE for i in range(len(frames))]
    )
    assert dev.placed == [(0.25, 0.75)]
    mic = read_wav(tmp_path / "mic.wav")
    assert mic.seconds == pytest.approx(stream)
    assert np.allclose(mic.samples[4000:12000], a.samples, atol=1e-4)
    assert not read_wav(tmp_path / "speaker.wav").samples.any()


def test_virtual_device_playback_stop_and_echo() -> None:
    dev = VirtualDevice([], tail_s=3.0, speed=float("inf"), echo_gain=0.5, echo_delay_ms=30)
    frames = dev.frames()
    first = next(frames)
    assert not first.played.any()
    reply = dev.play(tone(0.5))
    queued = dev.play(tone(0.5, freq=660))
    assert dev.playing and not reply.done
    got = [next(frames) for _ in range(20)]  # 0.64 s
    played = np.concatenate([f.played for f in got])
    mic = np.concatenate([f.mic for f in got])
    assert np.allclose(played[:8000], tone(0.5).samples)
    assert reply.done and reply.played_seconds == pytest.approx(0.5)
    # the echo: half the played signal, 30 ms (480 samples) later
    assert np.allclose(mic[480:8000], 0.5 * played[:7520], atol=1e-5)
    dev.stop_playback()
    assert queued.done and 0 < queued.played_seconds < 0.5 and not dev.playing
    after = next(frames)
    assert not after.played.any()
    assert dev.stops == [pytest.approx(21 * 512 / MIC_RATE)]
    assert dev.plays == [pytest.approx(512 / MIC_RATE)] * 2
    dev.close()
    assert list(frames) == []


def test_virtual_device_turn_taking_waits_for_the_reply() -> None:
    """The second utterance comes `gaps_s` after the reply to the first has played."""
    dev = VirtualDevice(
        [tone(0.3), tone(0.3)], gaps_s=0.4, lead_in_s=0.1, tail_s=0.3, speed=float("inf")
    )
    frames = []
    for f in dev.frames():
        frames.append(f)
        if len(dev.plays) == 0 and f.time >= 0.8:
            dev.play(tone(0.6, freq=880))
    (s1, _), (s2, e2) = dev.placed
    assert s1 == pytest.approx(0.1, abs=0.04)
    reply_end = max(f.time for f in frames if f.played.any()) + 512 / MIC_RATE
    assert reply_end == pytest.approx(0.8 + 0.6, abs=0.07)
    assert s2 == pytest.approx(reply_end + 0.4, abs=0.07)
    # no reply to the second: the stream ends reply_timeout_s (30) + tail_s after it
    assert frames[-1].time + 512 / MIC_RATE == pytest.approx(e2 + 30.3, abs=0.04)


def test_virtual_device_is_fed_from_another_thread() -> None:
    """play()/stop_playback() from a speaker thread while the listener reads frames."""
    dev = VirtualDevice([tone(0.2)], lead_in_s=0.1, tail_s=0.2, speed=8.0)
    played = []

    def speaker() -> None:
        while dev.time < 0.4:
            time.sleep(0.002)
        played.append(dev.play(tone(0.3)))
        time.sleep(0.1 / 8)
        dev.stop_playback()
        played.append(dev.play(tone(0.2)))

    thread = threading.Thread(target=speaker)
    thread.start()
    frames = list(dev.frames())
    thread.join()
    assert played[0].done and 0 < played[0].played_seconds < 0.3
    assert played[1].done and played[1].played_seconds == pytest.approx(0.2)
    out = np.concatenate([f.played for f in frames])
    assert np.count_nonzero(out) / MIC_RATE == pytest.approx(
        played[0].played_seconds + 0.2, abs=0.01
    )
    assert len(dev.stops) == 1 and dev.plays[0] <= dev.stops[0] <= dev.plays[1]


def test_virtual_device_talks_over_the_reply_at_explicit_times() -> None:
    """A (start_s, clip) input lands at that time even while a reply plays; the reply
    echoes into the microphone through a small room."""
    dev = VirtualDevice(
        [(0.5, tone(0.2, freq=300))],
        tail_s=0.2,
        speed=float("inf"),
        echo_gain=0.3,
        echo_delay_ms=20,
        echo_decay_ms=40,
    )
    frames = dev.frames()
    dev.play(tone(1.0, freq=1000))
    got = list(frames)
    assert dev.placed == [(0.5, 0.7)]
    mic = np.concatenate([f.mic for f in got])
    assert not mic[:320].any()  # 20 ms until the echo arrives
    echo = mic[1000:7000]  # before the user speaks: only the echo
    assert 0.15 < np.std(echo) / np.std(tone(1.0).samples) < 0.6
    spectrum = np.abs(np.fft.rfft(mic[8000:11200]))  # 0.5-0.7 s: both, 5 Hz bins
    assert spectrum[60] > 100 and spectrum[200] > 50  # her 300 Hz and the 1 kHz echo


def test_virtual_device_listen_and_transcribe(whisper: FasterWhisperSTT) -> None:
    """The listening pipeline end to end: device -> Endpointer -> Whisper."""
    dev = VirtualDevice(
        [voice(HELLO), voice(WEATHER)],
        gaps_s=1.0,
        turn_taking=False,
        tail_s=0.8,
        reply_timeout_s=0.1,
        speed=float("inf"),
        noise=0.003,
    )
    ep = Endpointer(SileroVAD())
    heard = []
    for frame in dev.frames():
        for event in ep.push(frame.mic, frame.time):
            if isinstance(event, Utterance):
                heard.append((event, whisper.transcribe(event.audio).text))
    assert [wer(ref, text) for ref, (_, text) in zip([HELLO, WEATHER], heard, strict=True)] == [
        0.0,
        0.0,
    ]
    for (u, _), (start, end) in zip(heard, dev.placed, strict=True):
        assert start <= u.started <= start + 0.3 and end - 0.3 <= u.ended <= end


# -- the sound card ----------------------------------------------------------


def _one_line_error(exc: pytest.ExceptionInfo[AudioError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_open_microphone_without_a_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import sounddevice

    def no_device(*args: Any, **kwargs: Any) -> Any:
        raise sounddevice.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sounddevice, "query_devices", no_device)
    with pytest.raises(AudioError) as exc:
        open_microphone()
    assert "no audio input device found; try: companion voice --input-wav" in _one_line_error(exc)


def test_open_microphone_without_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoPortAudio(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *args: Any) -> None:
            if name == "sounddevice":
                raise OSError("PortAudio library not found")

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(AudioError) as exc:
        open_microphone()
    assert "apt-get install libportaudio2" in _one_line_error(exc)
    with pytest.raises(AudioError):
        list_devices()


def test_list_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    import sounddevice

    fake = [{"index": 0, "name": "USB mic", "max_input_channels": 1, "max_output_channels": 0}]
    monkeypatch.setattr(sounddevice, "query_devices", lambda: fake)
    assert list_devices() == ["0: USB mic (1 in, 0 out)"]
    monkeypatch.setattr(sounddevice, "query_devices", lambda: [])
    assert list_devices() == []


def test_sound_device_duplex_pairs_mic_and_speaker_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The duplex callback, driven by hand through a stand-in for sounddevice.Stream."""
    import sounddevice

    streams: list[Any] = []

    class FakeStream:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs, self.active = kwargs, False
            streams.append(self)

        def start(self) -> None:
            self.active = True

        def stop(self) -> None:
            self.active = False

        def close(self) -> None:
            pass

    monkeypatch.setattr(sounddevice, "Stream", FakeStream)
    monkeypatch.setattr(sounddevice, "query_devices", lambda *a, **k: {"name": "mic"})
    dev = open_microphone(block=256)
    assert isinstance(dev, AudioDevice)
    (stream,) = streams
    assert stream.active and stream.kwargs["samplerate"] == MIC_RATE
    callback = stream.kwargs["callback"]
    clip = dev.play(tone(0.02))  # 320 samples
    outs = []
    for i in range(3):
        mic = np.full((256, 1), i, dtype=np.float32)
        out = np.ones((256, 1), dtype=np.float32)
        callback(mic, out, 256, None, None)
        outs.append(out[:, 0].copy())
    assert clip.done and not dev.playing
    dev.close()
    frames = list(dev.frames())
    assert [f.time for f in frames] == [0.0, 256 / MIC_RATE, 512 / MIC_RATE]
    assert [f.mic[0] for f in frames] == [0, 1, 2]
    for f, out in zip(frames, outs, strict=True):
        assert np.array_equal(f.played, out)  # what went to the speaker, exactly
    assert np.allclose(np.concatenate(outs)[:320], tone(0.02).samples)
    assert not np.concatenate(outs)[320:].any() and not stream.active
