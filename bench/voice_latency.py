"""Voice latency: end of the user's speech -> her first sample out, stage by stage.

Synthesizes a set of conversational utterances (Piper, and espeak-ng through
pyttsx3 with ``--engines piper,espeak``), plays them into the voice loop through
the virtual device in real time (the same code path as a microphone), with the
real Silero VAD, faster-whisper tiny.en, Piper for her voice and a real chat
model, and prints per turn and as p50/p95:

- end of turn: the user's last speech -> the end of the turn detected (200 ms of
  silence, then Smart Turn; ``--no-turn``: 600 ms of silence, as before)
- STT: -> transcript ready
- first token: -> the model's first text chunk
- first sentence synthesized: -> the first sentence's audio ready
- first audio out: -> its first sample leaves the speaker

plus the recognizer's word error rate on the same utterances. The target
(issues 5 and 15): p50 end-to-end under 800 ms, p95 under 1.5 s with the
default model on 2 cores. False cut-offs are measured by bench/turn_taking.py,
barge-in by tests/test_voice_loop.py and tests/test_voice_e2e.py.

    .venv/bin/python bench/voice_latency.py
    .venv/bin/python bench/voice_latency.py --model smollm2-135m-instruct --engines piper,espeak
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_common import machine  # noqa: E402

UTTERANCES = [
    "Hi Samantha, my name is Theo.",
    "I had a long day at work today.",
    "Do you like music?",
    "My sister lives in Boston and she is a nurse.",
    "What should I cook for dinner tonight?",
    "I went for a walk by the ocean this morning.",
    "Tell me something that made you laugh.",
    "I'm a bit nervous about tomorrow.",
    "Do you remember where my sister lives?",
    "Thank you, that really helps.",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_engine(engine: str, args: argparse.Namespace, llm: Any) -> tuple[list[Any], float]:
    from companion import Companion
    from companion.voice.devices import VirtualDevice
    from companion.voice.loop import FirstAudio, Heard, VoiceLoop
    from companion.voice.stt import load_stt
    from companion.voice.tts import load_tts
    from companion.voice.vad import load_vad
    from companion.voice.wer import corpus_wer

    maker = load_tts("piper" if engine == "piper" else "pyttsx3")
    from companion.voice.base import SpeechStyle

    clips = [maker.synthesize(text, SpeechStyle(rate=165)) for text in UTTERANCES[: args.turns]]
    events: list[Any] = []
    device = VirtualDevice(clips, gaps_s=1.0, speed=1.0, tail_s=1.0)
    home = Path(tempfile.mkdtemp(prefix="voice-latency-"))
    with Companion.open(user="theo", model=llm, home=home, temperature=0.0,
                        max_tokens=args.max_tokens) as c:
        from companion.cli.voice import STT_THREADS, voice_decoding
        from companion.voice.turn import load_turn_model

        voice_decoding(llm, c.config)
        turn, why = load_turn_model() if args.turn else (None, "end of turn by silence only")
        if why:
            print(f"  ({why})")
        stt_threads = 1 if args.turn else STT_THREADS  # recognition now overlaps the turn wait
        loop = VoiceLoop(c, device, load_stt(threads=stt_threads), load_tts(args.tts), load_vad(),
                         on_event=events.append, turn=turn)
        loop.run(greet=False)
        spec = loop.speculator
        print(f"  speculation: {'on' if spec.enabled else 'off (no Companion.prompt_for)'}, "
              f"{spec.hits} hits, {spec.misses} misses")
    device.close()
    heard = [e.text for e in events if isinstance(e, Heard)]
    pairs = list(zip(UTTERANCES[: len(heard)], heard, strict=False))
    for ref, hyp in pairs:
        if args.verbose:
            print(f"  said {ref!r}\n  heard {hyp!r}")
    firsts = [e for e in events if isinstance(e, FirstAudio) and e.times is not None]
    return firsts, corpus_wer(pairs) if pairs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--engines", default="piper", help="voices for the user's utterances")
    ap.add_argument("--tts", default="piper", help="her voice")
    ap.add_argument("--turns", type=int, default=len(UTTERANCES))
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--threads", type=int, help="generation threads (default: as companion voice)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--no-turn", dest="turn", action="store_false",
                    help="end turns by 600 ms of silence (before Smart Turn)")
    args = ap.parse_args()

    from companion.llm.loader import load_llm

    print(machine())
    t0 = time.perf_counter()
    llm = load_llm(args.model, threads=args.threads)
    print(f"model: {args.model}, generation threads {args.threads or 'default'}, "
          f"loaded in {time.perf_counter() - t0:.1f} s; her voice: {args.tts}")
    stages = ("end of turn", "STT", "first token", "1st sentence synth", "first audio out")
    for engine in args.engines.split(","):
        firsts, wer = run_engine(engine.strip(), args, llm)
        rows: list[list[float]] = []
        for e in firsts:
            t = e.times
            marks = [t.speech_end, t.detected, t.transcribed, t.first_token,
                     t.first_synthesized, t.first_audio]
            if any(m is None for m in marks):
                continue
            rows.append([(b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False)]
                        + [(marks[-1] - marks[0]) * 1000])
        print(f"\nuser voice: {engine}; {len(rows)} turns measured; STT word error rate "
              f"{wer:.3f}")
        if not rows:
            print("  no complete turns")
            continue
        print(f"  {'stage (ms)':<22}{'p50':>8}{'p95':>8}")
        for i, name in enumerate((*stages, "TOTAL speech end -> audio")):
            col = [r[i] for r in rows]
            print(f"  {name:<22}{statistics.median(col):>8.0f}{pct(col, 0.95):>8.0f}")
        total = statistics.median([r[-1] for r in rows])
        verdict = "meets" if total < 800 else "misses"
        print(f"  p50 end-to-end {total:.0f} ms: {verdict} the 800 ms target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
