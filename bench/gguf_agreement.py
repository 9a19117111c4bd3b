"""The GGUF engine against llama.cpp on the same file (issue 16, parts 2 and 5).

    flock /tmp/cpu.lock .venv/bin/python bench/gguf_agreement.py --threads 2
    .venv/bin/python bench/gguf_agreement.py --models SmolLM2-135M-Instruct.Q4_1.gguf
    .venv/bin/python bench/gguf_agreement.py --footprint

For each model: free-running greedy decoding of the fixed prompts of
``tests/data/quality/prompts.toml`` (chat template, ``--tokens`` tokens each) by
both engines, and how many prompts agree over all of them (target: at least
90%); next-token top-1 agreement over ``tests/data/quality/text.txt``; and the
perplexity of that text by each (target: within 1%).

``--footprint`` instead measures, for each model in a fresh process: the load
time (file mapped, tokenizer and kernels ready) and the peak resident memory of
load + 64 greedy tokens against the GGUF's size (target: at most 1.15x).
Neither torch nor transformers is imported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "quality"
MODELS = (
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
    "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
)


def find(name: str) -> Path:
    from companion.paths import models_dir

    for folder in (models_dir() / "gguf", Path.home() / ".cache/companion/models/gguf"):
        if (folder / name).is_file():
            return folder / name
    return Path(name)


def prompts() -> list[list[dict[str, str]]]:
    data = tomllib.loads((DATA / "prompts.toml").read_text(encoding="utf-8"))
    head = [{"role": "system", "content": data["system"]}] if "system" in data else []
    return [[*head, {"role": "user", "content": str(p)}] for p in data["prompts"]]


def greedy(first: Any, step: Any, ids: list[int], n: int, end: frozenset[int]) -> list[int]:
    out: list[int] = []
    logits = first(ids)
    while len(out) < n:
        token = int(np.argmax(logits))
        out.append(token)
        if token in end:
            break
        logits = step(token)
    return out


def perplexity(logits: np.ndarray[Any, Any], ids: list[int]) -> float:
    x = logits[:-1].astype(np.float64)
    x -= x.max(-1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    nll = -logp[np.arange(len(ids) - 1), ids[1:]]
    return math.exp(float(nll.mean()))


def compare(path: Path, threads: int, n: int) -> None:
    import llama_cpp

    from companion.llm.gguf.model import GGUFModel
    from companion.llm.gguf.tokenizer import GGUFTokenizer

    model = GGUFModel.open(path, threads=threads)
    tok = GGUFTokenizer(model.gguf.metadata, path)
    llama = llama_cpp.Llama(
        str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    vocab = llama.n_vocab()

    def theirs_eval(ids: list[int]) -> Any:
        llama.eval(ids)
        return np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(vocab,)).copy()

    agree, shared, ours_s, theirs_s = 0, [], 0.0, 0.0
    for turns in prompts():
        ids = tok.encode(tok.render(turns))
        cache = model.new_cache(2048)
        t = time.perf_counter()
        ours = greedy(
            lambda p, c=cache: model.forward(p, c),
            lambda x, c=cache: model.forward([x], c),
            ids, n, tok.end_ids,
        )  # fmt: skip
        ours_s += time.perf_counter() - t
        llama.reset()
        t = time.perf_counter()
        theirs = greedy(theirs_eval, lambda x: theirs_eval([x]), ids, n, tok.end_ids)
        theirs_s += time.perf_counter() - t
        agree += ours == theirs
        same = next(
            (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), len(ours)
        )
        shared.append(same)
    total = len(shared)
    print(
        f"{path.name}: greedy {n} tokens agree on {agree}/{total} prompts "
        f"({100 * agree / total:.0f}%; target 90%), tokens before the first divergence "
        f"{sum(shared) / total:.1f} on average; time ours {ours_s:.1f}s, llama.cpp "
        f"{theirs_s:.1f}s"
    )
    text = (DATA / "text.txt").read_text(encoding="utf-8")
    ids = tok.encode(text)[:1024]
    ours_logits = model.forward(ids, model.new_cache(2048), every=True)
    del llama
    llama = llama_cpp.Llama(
        str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads,
        logits_all=True, verbose=False,
    )  # fmt: skip
    llama.eval(ids)
    theirs_logits = np.array(llama.scores[: len(ids)], dtype=np.float32)
    top1 = float((ours_logits.argmax(-1) == theirs_logits.argmax(-1)).mean())
    p_ours, p_theirs = perplexity(ours_logits, ids), perplexity(theirs_logits, ids)
    print(
        f"{path.name}: next-token top-1 agreement {100 * top1:.1f}% over {len(ids)} tokens; "
        f"perplexity ours {p_ours:.3f}, llama.cpp {p_theirs:.3f} "
        f"({100 * (p_ours / p_theirs - 1):+.2f}%; target within 1%)"
    )


def footprint_one(path: Path, threads: int) -> dict[str, float]:
    """Load + 64 greedy tokens in this process (run in a fresh one)."""
    from companion.llm.gguf.backend import GGUFBackend
    from companion.types import GenerationParams, Message

    started = time.perf_counter()
    llm = GGUFBackend(path, threads=threads)
    loaded = time.perf_counter() - started
    messages = [Message("user", "Tell me a long story about a lighthouse keeper.")]
    params = GenerationParams(max_tokens=64, temperature=0.0)
    text = "".join(llm.stream(messages, params))
    stats = llm.last_stats
    assert stats is not None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "load_s": loaded,
        "peak_bytes": peak,
        "size": path.stat().st_size,
        "tokens": stats.generated_tokens,
        "decode_tok_s": stats.generated_tokens / max(stats.decode_seconds, 1e-9),
        "chars": len(text),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--footprint", action="store_true")
    parser.add_argument("--footprint-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.footprint_one:
        print(json.dumps(footprint_one(Path(args.footprint_one), args.threads)))
        return 0
    for name in args.models.split(","):
        path = find(name)
        if not path.is_file():
            print(f"{name}: not downloaded, skipped")
            continue
        if not args.footprint:
            compare(path, args.threads, args.tokens)
            continue
        run = subprocess.run(
            [sys.executable, __file__, f"--threads={args.threads}", f"--footprint-one={path}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"{name}: load {r['load_s']:.2f}s, peak RSS {r['peak_bytes'] / 1e6:.0f} MB for a "
            f"{r['size'] / 1e6:.0f} MB GGUF ({r['peak_bytes'] / r['size']:.2f}x; target 1.15x), "
            f"{r['tokens']:.0f} tokens at {r['decode_tok_s']:.1f} tok/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
