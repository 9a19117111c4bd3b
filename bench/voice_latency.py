"""Voice latency, cut-offs and barge-in, live through the voice loop, model by model.

For each chat model (the default ``qwen2.5-coder-0.5b-instruct`` and
``qwen2.5-coder-1.5b-instruct`` unless ``--models`` says; loaded one at a
time, the first freed before the next), synthesized speech is played through
the virtual device in real time (the same code path as a microphone) into the
voice loop, with the real Silero VAD, faster-whisper tiny.en, Smart Turn and
Piper for her voice (bench/voice_passes.py), in three passes:

1. latency: conversational utterances (Piper; ``--engines piper,espeak`` adds
   espeak-ng through pyttsx3); per turn and as p50/p95, from the user's last
   speech to the end of the turn detected (Smart Turn; ``--no-turn``: 600 ms of
   silence), the transcript, the first token, the first sentence synthesized
   and her first sample out; the recognizer's word error rate; speculation
   hits and misses (the prompt read during the silence).
2. false cut-offs: sentences with a mid-sentence pause of 300, 450 and 600 ms,
   built as bench/turn_taking.py builds them (which measures the same offline,
   on more sentences and voices, without a chat model).
3. barge-in: with her echo in the microphone (gain 0.3, 40 ms, a small room),
   the user (espeak-ng) asks, then talks over her reply ``--barge-after``
   seconds into it: ms from the user's first sound to her playback stopping;
   false barge-ins (her echo alone taken for the user) must be 0.

Then one summary row per model. Targets (issues 5 and 15): end of speech ->
first audio p50 <= 800 ms and p95 <= 1.5 s; false cut-offs <= 5% of
mid-sentence pauses of 300-600 ms; barge-in <= 200 ms with no false barge-ins.

    flock /tmp/cpu.lock .venv/bin/python bench/voice_latency.py
    .venv/bin/python bench/voice_latency.py --models smollm2-135m-instruct --passes latency
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from memory_common import machine  # noqa: E402
from turn_taking import SENTENCES  # noqa: E402
from voice_passes import (  # noqa: E402
    STAGES,
    UTTERANCES,
    BargeIns,
    Cutoffs,
    Latency,
    Voice,
    barge_in_pass,
    cutoff_pass,
    latency_pass,
)

MODELS = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct"
PASSES = ("latency", "cutoffs", "bargein")


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Summary:
    model: str
    e2e: list[float]
    cut: tuple[int, int]
    hits: int
    misses: int
    barge: list[BargeIns]
    wer: float


def print_latency(lat: Latency) -> None:
    run = lat.run
    spec = f"{run.hits} hits, {run.misses} misses" if run.speculation else "off"
    print(f"\nlatency, user voice {lat.engine}: {len(lat.rows)} turns measured; STT word "
          f"error rate {lat.wer:.3f}; speculation {spec}")
    if not lat.rows:
        print("  no complete turns")
        return
    print(f"  {'stage (ms)':<26}{'p50':>8}{'p95':>8}")
    for i, name in enumerate((*STAGES, "TOTAL speech end -> audio")):
        col = [r[i] for r in lat.rows]
        print(f"  {name:<26}{p50(col):>8.0f}{pct(col, 0.95):>8.0f}")


def print_cutoffs(c: Cutoffs) -> None:
    cut, n = c.total
    parts = ", ".join(f"{ms} ms {sum(v)}/{len(v)}" for ms, v in c.cut.items())
    print(f"\nfalse cut-offs: {cut}/{n} mid-sentence pauses cut ({cut / max(n, 1):.1%}): {parts}; "
          f"{c.unheard} sentences heard as no turn; speculation {c.run.hits} hits, "
          f"{c.run.misses} misses")


def print_barge(b: BargeIns) -> None:
    print(f"\nbarge-in {b.after_s:g} s into her reply, with echo: {len(b.ms)} stopped, user's "
          f"first sound -> playback stopped p50 {p50(b.ms):.0f} ms, p95 {pct(b.ms, 0.95):.0f} "
          f"ms, max {pct(b.ms, 1.0):.0f} ms; {b.missed} not stopped; {b.late} too late (her "
          f"reply was over); false barge-ins {b.false}, echo heard as a turn {b.echo_turns} "
          f"({b.heard_out} replies, {b.heard_out_s:.0f} s, played to the end with her echo and "
          f"nobody over them); "
          f"speculation {b.run.hits} hits, {b.run.misses} misses")
    print("  per barge-in (ms): " + (", ".join(f"{x:.0f}" for x in b.ms) or "none"))
    for notice in b.notices:
        print(f"  echo guard: {notice}")
    for note in b.false_notes:
        print(f"  false barge-in at {note}")


def run_model(name: str, args: argparse.Namespace, voice: Voice) -> Summary:
    from companion.llm.loader import load_llm

    t0 = time.perf_counter()
    llm = load_llm(name, threads=args.threads)
    print(f"\n=== model: {name}, generation threads {args.threads or 'default'}, loaded in "
          f"{time.perf_counter() - t0:.1f} s; her voice: {args.tts}", flush=True)
    out = Summary(name, [], (0, 0), 0, 0, [], float("nan"))
    if "latency" in args.passes:
        for i, engine in enumerate(args.engines.split(",")):
            lat = latency_pass(llm, voice, engine.strip(), turns=args.turns,
                               max_tokens=args.max_tokens, verbose=args.verbose)
            print_latency(lat)
            out.e2e += [r[-1] for r in lat.rows]
            out.hits, out.misses = out.hits + lat.run.hits, out.misses + lat.run.misses
            if i == 0:  # the summary's WER: the first user voice's
                out.wer = lat.wer
    if "cutoffs" in args.passes:
        sentences = SENTENCES[:: max(1, len(SENTENCES) // args.pause_sentences)]
        cuts = cutoff_pass(llm, voice, sentences=sentences[: args.pause_sentences],
                           max_tokens=args.cutoff_max_tokens)
        print_cutoffs(cuts)
        out.cut = cuts.total
        out.hits, out.misses = out.hits + cuts.run.hits, out.misses + cuts.run.misses
    if "bargein" in args.passes:
        for after in args.barge_after.split(","):
            b = barge_in_pass(llm, voice, rounds=args.barge_ins, after_s=float(after),
                              max_tokens=args.barge_max_tokens)
            print_barge(b)
            out.barge.append(b)
            out.hits, out.misses = out.hits + b.run.hits, out.misses + b.run.misses
    del llm
    gc.collect()  # free the model before the next is loaded
    return out


def print_summary(rows: list[Summary]) -> None:
    def ms(x: float) -> str:
        return "-" if x != x else f"{x:.0f}"

    print("\n| model | e2e p50 ms | e2e p95 ms | false cut-offs | spec hits/misses "
          "| barge-in p50/p95 ms (stopped/tried), by how far into her reply | false barge-ins "
          "| WER |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cut, n = r.cut
        barge = "; ".join(
            f"{b.after_s:g} s: {ms(p50(b.ms))}/{ms(pct(b.ms, 0.95))} "
            f"({len(b.ms)}/{len(b.ms) + b.missed})" for b in r.barge
        )
        cells = [
            r.model, ms(p50(r.e2e)), ms(pct(r.e2e, 0.95)),
            f"{cut}/{n} ({cut / n:.1%})" if n else "-", f"{r.hits}/{r.misses}", barge or "-",
            str(sum(b.false for b in r.barge)) if r.barge else "-",
            "-" if r.wer != r.wer else f"{r.wer:.3f}",
        ]
        print("| " + " | ".join(cells) + " |")
    print(machine())


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--models", default=MODELS, help="chat models, comma-separated")
    ap.add_argument("--passes", default=",".join(PASSES), help="of " + ", ".join(PASSES))
    ap.add_argument("--engines", default="piper", help="user voices for the latency pass")
    ap.add_argument("--tts", default="piper", help="her voice")
    ap.add_argument("--turns", type=int, default=len(UTTERANCES))
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--pause-sentences", type=int, default=8,
                    help="sentences of bench/turn_taking.py, each said with every pause")
    ap.add_argument("--cutoff-max-tokens", type=int, default=16,
                    help="reply length in the cut-off pass (only the turns matter)")
    ap.add_argument("--barge-ins", type=int, default=8)
    ap.add_argument("--barge-after", default="1.5,3",
                    help="seconds into her reply the user talks over it (a pass for each)")
    ap.add_argument("--barge-max-tokens", type=int, default=60)
    ap.add_argument("--threads", type=int, help="generation threads (default: as companion voice)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--no-turn", dest="turn", action="store_false",
                    help="end turns by 600 ms of silence (before Smart Turn)")
    args = ap.parse_args()
    args.passes = [p.strip() for p in args.passes.split(",")]
    if unknown := set(args.passes) - set(PASSES):
        ap.error(f"unknown passes {sorted(unknown)}: use {', '.join(PASSES)}")

    from companion.cli.voice import STT_THREADS
    from companion.voice.stt import load_stt
    from companion.voice.tts import load_tts
    from companion.voice.turn import load_turn_model

    print(machine())
    turn, why = load_turn_model() if args.turn else (None, "end of turn by silence only")
    if why:
        print(f"({why})")
    stt_threads = 1 if args.turn else STT_THREADS  # recognition overlaps the turn wait
    voice = Voice(load_stt(threads=stt_threads), load_tts(args.tts), turn)
    rows = [run_model(name.strip(), args, voice) for name in args.models.split(",")]
    print_summary(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
