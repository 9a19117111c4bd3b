"""Time to first token of each turn of a real conversation, through the dialog manager.

Runs a scripted 24-turn conversation through :class:`companion.Companion` with
a real model (greedy, short replies), the real memory (recall, facts) and the
real prompt layout (persona, history with its private notes, this turn's note),
and prints per turn: time from ``say()`` to the first text chunk (with the reply
guard on, that chunk is the checked first clause; ``--no-guard`` shows the
model's first token), the prompt
tokens, how many were reused from the cached prefix, and how many had to be
prefilled. The target (issue 6): turn 20's first token in at most 300 ms.

    .venv/bin/python bench/dialog_latency.py --model qwen2.5-coder-0.5b-instruct
    .venv/bin/python bench/dialog_latency.py --model smollm2-135m-instruct --no-reuse
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_common import machine  # noqa: E402

SCRIPT = [
    "Hi! My name is Theo, I'm a letter writer and I live in Los Angeles.",
    "I had a long day at work, writing letters for other people.",
    "Do you ever get tired of talking to people?",
    "My ex-wife Catherine and I are finally signing the divorce papers.",
    "It makes me sad, but I think it's the right thing.",
    "What do you think makes a relationship last?",
    "I like to play video games late at night when I can't sleep.",
    "My friend Amy is making a documentary about her mother.",
    "Do you like music? I've been listening to a lot of piano lately.",
    "Sometimes I feel like I've already felt everything I'm ever going to feel.",
    "Tell me something that surprised you today.",
    "I went to the beach on Sunday and it was beautiful.",
    "Would you like to see the ocean if you could?",
    "My birthday is on the twelfth of March.",
    "I'm thinking of going on a trip to Catalina island.",
    "What kind of places do you imagine when you think of home?",
    "I'm allergic to cats, which is a shame because I love them.",
    "Amy says I should go out more. Do you agree?",
    "I wrote a really good letter today, for an old couple's anniversary.",
    "Do you remember what my job is?",
    "I think I'll go for a walk now.",
    "What should I cook for dinner tonight?",
    "I'm a bit nervous about seeing Catherine tomorrow.",
    "Thanks for listening to me, it helps.",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--turns", type=int, default=len(SCRIPT))
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--quantize", help="auto, none, int8 or int4 (default: the config's)")
    ap.add_argument("--decode-threads", type=int,
                    help="threads for decoding after the prefill (default: the same)")
    ap.add_argument("--no-reuse", action="store_true", help="prefill every prompt in full")
    ap.add_argument("--engine", default="auto", help="auto, gguf or transformers")
    ap.add_argument("--draft", default="", help="a draft model for the GGUF engine")
    ap.add_argument("--no-guard", action="store_true",
                    help="the reply guard off: the first chunk is the model's first token")
    args = ap.parse_args()

    from companion import Companion
    from companion.llm.loader import load_llm

    print(machine())
    extra = {"quantize": args.quantize} if args.quantize else {}
    started = time.perf_counter()
    llm = load_llm(args.model, threads=args.threads, engine=args.engine, draft=args.draft,
                   **extra)  # type: ignore[arg-type]
    print(f"model: {args.model} loaded in {time.perf_counter() - started:.1f} s")
    if args.decode_threads:
        llm.decode_threads = args.decode_threads  # type: ignore[attr-defined]
    if args.no_reuse:
        llm.reuse_prefix = False  # type: ignore[attr-defined]
    home = Path(tempfile.mkdtemp(prefix="dialog-latency-"))
    ttfts: list[float] = []
    decoded = decode_s = 0.0
    print(f"{'turn':>4} {'ttft ms':>8} {'prefill ms':>10} {'prompt':>7} {'reused':>7} "
          f"{'prefill':>8}  reply")
    with Companion.open(user="Theo", model=llm, home=home, temperature=0.0,
                        max_tokens=args.max_tokens, reply_guard=not args.no_guard) as c:
        for i, text in enumerate(SCRIPT[: args.turns], 1):
            t0 = time.perf_counter()
            reply = c.say(text)
            chunks = iter(reply)
            first = next(chunks, "")
            ttft = time.perf_counter() - t0
            rest = "".join(chunks)
            stats = getattr(llm, "last_stats", None)
            prompt = stats.prompt_tokens if stats else 0
            reused = stats.reused_tokens if stats else 0
            ttfts.append(ttft)
            if stats:
                decoded += max(stats.generated_tokens - 1, 0)
                decode_s += stats.decode_seconds
            said = (first + rest).replace("\n", " ")[:60]
            pre_ms = stats.prefill_seconds * 1000 if stats else 0.0
            print(f"{i:>4} {ttft * 1000:>8.0f} {pre_ms:>10.0f} {prompt:>7} {reused:>7} "
                  f"{prompt - reused:>8}  {said}")
    if decode_s:
        print(f"decode: {decoded / decode_s:.1f} tok/s over all turns")
    print(f"engine: {type(llm).__name__}" + (f", draft {args.draft}" if args.draft else ""))
    late = ttfts[9:]
    if len(ttfts) >= 20:
        print(f"turn 20 TTFT: {ttfts[19] * 1000:.0f} ms (target <= 300 ms)")
    if late:
        print(f"turns 10-{len(ttfts)}: TTFT p50 {statistics.median(late) * 1000:.0f} ms, "
              f"max {max(late) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
