"""Quality of the fast weight formats against a bf16 (or fp32) reference (issue 6, part 5).

    flock /tmp/cpu.lock python bench/quality.py --model qwen2.5-coder-0.5b-instruct
    python bench/quality.py --model smollm2-135m-instruct --methods none,int8,int4

For each method: greedy token agreement with the reference over the fixed
prompts of ``tests/data/quality/prompts.toml`` (teacher-forced, and the share
before the first divergence; see :mod:`companion.llm.quality`), and the
perplexity of ``tests/data/quality/text.txt`` against the reference's.

The low-bit formats are the transformers path's, for a folder of safetensors
(``--model`` also takes such a folder). A registry model is its GGUF, which the
GGUF engine runs on its own blocks; for this measure its weights are
dequantized to float32 and written to a temporary folder (removed afterwards),
standing in for a user's own model folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from companion.llm.fetch import fetch_gguf
from companion.llm.quality import (
    greedy_continuations,
    load_prompts,
    perplexity,
    token_agreement,
)
from companion.llm.registry import load_registry
from companion.llm.transformers_backend import TransformersLLM

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "quality"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", default="qwen2.5-coder-0.5b-instruct",
        help="a registry model or a folder of safetensors",
    )
    parser.add_argument("--methods", default="none,int8,int4", help="none = float32")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reference", choices=("bf16", "fp32"), default="bf16")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        return _measure(args, model_folder(args.model, Path(scratch)))


def model_folder(model: str, scratch: Path) -> Path:
    """``model``'s folder of safetensors: the folder named, or a registry model's GGUF
    written into ``scratch`` as one (see the module docstring; bench/quantize_survey.py
    uses it too)."""
    if Path(model).is_dir():
        return Path(model)
    entry = load_registry().get(model)
    if entry is None:
        sys.exit(f"not a registry model nor a folder: {model}")
    gguf = fetch_gguf(entry)
    sys.path.insert(0, str(ROOT / "tests"))  # the tests' helper, as bench/echo.py does
    from gguf_files import safetensors_folder

    print(f"writing {gguf.name} as float32 safetensors into a temporary folder", flush=True)
    return safetensors_folder(gguf, scratch / entry.name)


def _measure(args: argparse.Namespace, folder: Path) -> int:
    prompts = load_prompts(DATA / "prompts.toml")
    text = (DATA / "text.txt").read_text(encoding="utf-8")

    started = time.perf_counter()
    reference = TransformersLLM.from_pretrained(folder, threads=args.threads, quantize="none")
    if args.reference == "bf16":
        reference.model.to(reference._torch.bfloat16)
    continuations = greedy_continuations(reference, prompts, args.new_tokens)
    ref_ppl = perplexity(reference, text)
    del reference
    print(
        f"{args.model}: {len(prompts)} prompts x up to {args.new_tokens} greedy tokens, "
        f"text of {len(text.split())} words; {args.reference} reference perplexity {ref_ppl:.3f} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(f"{'method':<8}{'agreement':>10}{'prefix':>8}{'perplexity':>12}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as cache:
        for method in args.methods.split(","):
            llm = TransformersLLM.from_pretrained(
                folder, threads=args.threads, quantize=method, cache=Path(cache)
            )
            agree = token_agreement(llm, continuations)
            ppl = perplexity(llm, text)
            label = "fp32" if method == "none" else method
            print(
                f"{label:<8}{agree.agreement:10.3f}{agree.prefix:8.3f}{ppl:12.3f}"
                f"{ppl / ref_ppl:8.3f}   first divergences {list(agree.first_divergence)}",
                flush=True,
            )
            del llm
    return 0


if __name__ == "__main__":
    sys.exit(main())
