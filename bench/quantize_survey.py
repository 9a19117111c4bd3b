"""Survey of the weight formats of the transformers backend: decode speed, memory, load time.

    flock /tmp/cpu.lock python bench/quantize_survey.py --model smollm2-135m-instruct
    python bench/quantize_survey.py --model qwen2.5-coder-0.5b-instruct --methods int8,int4

The low-bit formats are the transformers path's, for a folder of safetensors;
``--model`` is such a folder or a registry model, whose GGUF is then written to
a temporary folder of float32 safetensors first (see bench/quality.py: the GGUF
engine runs registry models on their own blocks). For each method ("none" is
float32, "bf16" the same cast to bfloat16), two fresh processes load the folder
through ``TransformersLLM.from_pretrained``: the first with an empty
quantized-copy cache (first start: quantizes and writes it), the second reading
it (second start).
The second also decodes ``--new-tokens`` greedy tokens ``--repeat`` times through
the backend's own loop (median tok/s). Peak RSS is the process's VmHWM.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROMPT = "Tell me a long story about a lighthouse keeper and her cat."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", default="smollm2-135m-instruct",
        help="a registry model or a folder of safetensors",
    )
    parser.add_argument("--methods", default="none,bf16,int8,int4")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "CACHE"), help=argparse.SUPPRESS)
    parser.add_argument("--decode", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args, args.child[0], Path(args.child[1]))
    with tempfile.TemporaryDirectory() as scratch:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from quality import model_folder

        folder = model_folder(args.model, Path(scratch))
        print(f"{args.model}, {args.threads} threads, {args.new_tokens} new tokens, greedy")
        print(f"{'method':<7}{'tok/s':>8}{'peak RSS MB':>13}{'load s 1st':>12}{'2nd':>7}"
              f"{'RSS 1st':>9}")
        for method in args.methods.split(","):
            cache = str(Path(scratch) / "cache")
            first = _run(args, folder, method, cache, decode=False)
            second = _run(args, folder, method, cache, decode=True)
            print(
                f"{method:<7}{second['tok_s']:8.1f}{second['rss_mb']:13.0f}"
                f"{first['load_s']:12.2f}{second['load_s']:7.2f}{first['rss_mb']:9.0f}",
                flush=True,
            )
    return 0


def _run(
    args: argparse.Namespace, folder: Path, method: str, cache: str, *, decode: bool
) -> dict[str, Any]:
    cmd = [sys.executable, "-W", "ignore", __file__, "--model", str(folder), "--child", method,
           cache, "--threads", str(args.threads), "--new-tokens", str(args.new_tokens),
           "--repeat", str(args.repeat)] + (["--decode"] if decode else [])  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _child(args: argparse.Namespace, method: str, cache: Path) -> int:
    """One load (and with --decode, the timed replies) of the folder ``--model``."""
    folder = Path(args.model)
    started = time.perf_counter()
    from companion.llm.transformers_backend import TransformersLLM

    quantize = "none" if method in ("none", "bf16") else method
    llm = TransformersLLM.from_pretrained(
        folder, threads=args.threads, quantize=quantize, cache=cache
    )
    if method == "bf16":
        llm.model.to(llm._torch.bfloat16)
    load_s = time.perf_counter() - started
    tok_s = 0.0
    if args.decode:
        from companion.types import GenerationParams, Message

        messages = [Message("user", PROMPT)]
        greedy = GenerationParams(max_tokens=args.new_tokens, temperature=0.0)
        "".join(llm.stream(messages, GenerationParams(max_tokens=4, temperature=0.0)))
        speeds = []
        for _ in range(args.repeat):
            llm.reset()
            "".join(llm.stream(messages, greedy))
            stats = llm.last_stats
            assert stats is not None
            speeds.append((stats.generated_tokens - 1) / stats.decode_seconds)
        tok_s = statistics.median(speeds)
    print(json.dumps({"load_s": load_s, "tok_s": tok_s, "rss_mb": _peak_rss_mb()}))
    return 0


def _peak_rss_mb() -> float:
    """This process's peak resident memory, in MB: VmHWM, which starts afresh at exec.

    ``ru_maxrss`` may carry over the peak of the parent that forked it, and the
    parent held a float32 model while it wrote the temporary folder.
    """
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
