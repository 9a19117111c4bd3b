"""Speech recognition on our own test set: word error rate, real-time factor, latency.

Twenty conversational sentences are synthesized with Piper (en_US-joe-medium,
a natural voice) and with espeak-ng (robotic: a hard case standing in for
unusual voices), cached by tests/voicedata.py, and transcribed one utterance
at a time, as the voice loop does. For each recognizer setting it prints the
corpus WER per voice, the real-time factor (transcription seconds / audio
seconds) and the median and 90th-percentile latency per utterance.

    flock /tmp/cpu.lock .venv/bin/python bench/stt_wer.py
    .venv/bin/python bench/stt_wer.py --configs 1:1 --show   # threads:beam, print the texts
    .venv/bin/python bench/stt_wer.py --configs 1:1:full      # the 30-second window (before)

pocketsphinx is compared when it is installed (pip install pocketsphinx).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from voicedata import speech  # noqa: E402

from companion.voice.audio import MIC_RATE, Audio  # noqa: E402
from companion.voice.wer import corpus_wer, wer  # noqa: E402

SENTENCES = [
    "Hey, how was your day?",
    "I just got back from a long walk in the park.",
    "Can you remind me what we talked about yesterday?",
    "My sister is coming to visit next weekend.",
    "I'm feeling a little tired, but otherwise I'm fine.",
    "What do you think I should cook for dinner tonight?",
    "Do you remember the name of my dog?",
    "It's been raining all morning and I can't go outside.",
    "Tell me something interesting about the ocean.",
    "I had a really strange dream last night.",
    "Work was stressful today because of a big meeting.",
    "Let's talk about music. What kind of songs do you like?",
    "I'm thinking about learning to play the guitar.",
    "Thanks, that actually makes me feel a lot better.",
    "Could you tell me a short story before I go to sleep?",
    "My favorite book is about a boy who travels across the sea.",
    "I don't know, maybe we could try something different this time.",
    "Wait, say that again please.",
    "Good night, I'll talk to you tomorrow.",
    "Why do people enjoy watching scary movies so much?",
]

Recognizer = Callable[[Audio], str]


def whisper(threads: int, beam: int, short_window: bool = True) -> Recognizer:
    from companion.voice.stt import FasterWhisperSTT

    stt = FasterWhisperSTT(threads=threads, beam_size=beam, short_window=short_window)
    return lambda audio: stt.transcribe(audio).text


def pocketsphinx() -> Recognizer | None:
    try:
        from pocketsphinx import Decoder  # type: ignore[import-untyped]
    except ImportError:
        return None
    decoder = Decoder(samprate=MIC_RATE, loglevel="FATAL")

    def run(audio: Audio) -> str:
        pcm = (audio.resampled(MIC_RATE).samples.clip(-1, 1) * 32767).astype("<i2").tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    return run


def measure(name: str, recognize: Recognizer, clips: dict[str, list[Audio]], show: bool) -> None:
    for engine, audios in clips.items():
        pairs, latencies = [], []
        recognize(audios[0])  # warm this path (resampling, caches)
        for text, audio in zip(SENTENCES, audios, strict=True):
            start = time.perf_counter()
            heard = recognize(audio)
            latencies.append(time.perf_counter() - start)
            pairs.append((text, heard))
            if show and wer(text, heard) > 0:
                print(f"    {engine}: {text!r} -> {heard!r}")
        seconds = sum(a.seconds for a in audios)
        q = statistics.quantiles(latencies, n=10)
        print(
            f"{name:<28} {engine:<7} WER {corpus_wer(pairs):6.1%}  "
            f"RTF {sum(latencies) / seconds:5.3f}  "
            f"p50 {statistics.median(latencies) * 1000:5.0f} ms  p90 {q[-1] * 1000:5.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", default="1:1:full,1:1,2:1,1:5",
        help="threads:beam[:full], comma-separated (full: the 30-second window, as before)",
    )
    parser.add_argument("--show", action="store_true", help="print misrecognized sentences")
    args = parser.parse_args()
    clips = {e: [speech(s, e) for s in SENTENCES] for e in ("piper", "espeak")}
    for engine, audios in clips.items():
        print(
            f"# {engine}: {len(audios)} sentences, {sum(a.seconds for a in audios):.1f} s of speech"
        )
    for config in args.configs.split(","):
        threads_s, beam_s, *rest = config.split(":")
        threads, beam, full = int(threads_s), int(beam_s), rest == ["full"]
        label = f"whisper tiny.en int8 t={threads} b={beam} {'30 s' if full else 'short'}"
        measure(label, whisper(threads, beam, not full), clips, args.show)
    sphinx = pocketsphinx()
    if sphinx is None:
        print("pocketsphinx not installed: skipped")
    else:
        measure("pocketsphinx 5 en-us", sphinx, clips, args.show)


if __name__ == "__main__":
    main()
