"""Speech synthesis speed: engine load, first sentence (cold), real-time factor.

    .venv/bin/python bench/tts_speed.py piper [THREADS]
    .venv/bin/python bench/tts_speed.py pyttsx3

Real-time factor = seconds of synthesis per second of audio (below 1: faster
than real time). The first sentence's time is what the voice loop waits for
before her first sound.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCES = [
    "Hello there.",
    "I was just thinking about what you said yesterday, and I think you're right.",
    "How did the interview go?",
    "That sounds like a lovely way to spend a Sunday afternoon with your sister.",
    "Tell me more.",
]


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "piper"
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    t0 = time.perf_counter()
    from companion.voice.base import SpeechStyle
    from companion.voice.tts import PiperTTS, load_tts

    tts = PiperTTS(threads=threads) if name == "piper" else load_tts(name)
    print(f"{name}: load {time.perf_counter() - t0:.2f} s (with imports)")
    style = SpeechStyle()
    t = time.perf_counter()
    clip = tts.synthesize("Hi! How are you today?", style)
    first = time.perf_counter() - t
    print(f"first sentence (cold): {first * 1000:.0f} ms for {clip.seconds:.2f} s of audio")
    synth = audio = 0.0
    for sentence in SENTENCES:
        t = time.perf_counter()
        clip = tts.synthesize(sentence, style)
        took = time.perf_counter() - t
        synth += took
        audio += clip.seconds
        print(f"  {took * 1000:6.0f} ms  {clip.seconds:5.2f} s audio  RTF {took / clip.seconds:.3f}"
              f"  {sentence[:40]}")
    print(f"real-time factor {synth / audio:.3f} ({synth:.2f} s for {audio:.2f} s of audio)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
