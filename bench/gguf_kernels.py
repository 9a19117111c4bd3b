"""GGUF kernel benchmark: matmul speed on real GGUF matrices, and the per-token total.

    python bench/gguf_kernels.py                          # the Qwen2.5-Coder GGUFs found
    python bench/gguf_kernels.py --threads 1,2 --llama    # and llama.cpp's decode speed
    python bench/gguf_kernels.py --model PATH.gguf --prefill 512 --json out.json

For each model (default: the 0.5B and 1.5B Qwen2.5-Coder Q4_K_M GGUFs in the
model cache) and each thread count it prints:

- ``read``: a plain read of all the file's weights by the kernels' thread pool,
  the memory-bandwidth yardstick (GB/s);
- per matrix (``blk.0.ffn_down``, ``ffn_gate``, ``attn_q`` by default): matmul
  at T=1 (decode: microseconds and GB/s of weights read; the matrix is hot in
  cache after the first call, so this is the kernel's compute speed) and at
  T=``--prefill`` (prefill: milliseconds, GFLOP/s, tokens/s);
- ``per token``: one T=1 matmul through every matrix of the network (all layers
  and the output), what a decode step's matmuls cost with the weights coming
  from memory: ms/token, tokens/s, GB/s;
- with ``--llama``: llama.cpp's decode speed on the same GGUF (llama-cpp-python,
  greedy, bench/generation.py's prompt and timing, in a fresh process per thread
  count) and the ratio of our matmul-only step to llama.cpp's whole step.

Timings are medians of ``--repeat`` runs; the load average is printed first:
numbers taken on a busy machine are indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader

from companion.llm.gguf.kernels import Kernels, load_kernels
from companion.paths import models_dir

DEFAULT_MODELS = (
    "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
    "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
)
DEFAULT_MATRICES = ("blk.0.ffn_down", "blk.0.ffn_gate", "blk.0.attn_q")
LAYER_MATRICES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


class Matrix:
    """One weight tensor of the file: its blocks in place, and its shape."""

    def __init__(self, tensor: Any) -> None:
        self.name = str(tensor.name).removesuffix(".weight")
        self.qtype = int(tensor.tensor_type)
        self.type_name = tensor.tensor_type.name
        self.cols, self.rows = int(tensor.shape[0]), int(tensor.shape[1])
        self.w = tensor.data.reshape(-1).view(np.uint8)

    def run(self, k: Kernels, x: np.ndarray, out: np.ndarray, threads: int) -> None:
        k.matmul(self.qtype, self.w, self.rows, self.cols, x, out, threads=threads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", type=Path, help="a GGUF file (repeatable)")
    parser.add_argument("--matrix", action="append", help="tensor name without .weight")
    parser.add_argument("--threads", type=_ints, default=[1, 2], help="e.g. 1,2")
    parser.add_argument("--prefill", type=int, default=512, help="tokens of the prefill case")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--llama", action="store_true", help="compare llama.cpp's decode")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child-llama", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_llama:
        return _child_llama(args.child_llama, args.threads[0])

    paths = args.model or [p for p in map(_find, DEFAULT_MODELS) if p is not None]
    if not paths:
        sys.exit("no GGUF found: pass --model PATH.gguf")
    k = load_kernels()
    print(
        f"machine: {_cpu()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"kernels: {k.isa}, prefill tiles of {k.tile or '-'} ({k.path.name})"
    )
    report: list[dict[str, Any]] = []
    for path in paths:
        report.append(_bench_model(k, path, args))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


def _bench_model(k: Kernels, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    reader = GGUFReader(str(path))
    tensors = {str(t.name).removesuffix(".weight"): t for t in reader.tensors}
    network = [Matrix(tensors[n]) for n in _network_order(tensors)]
    weight_bytes = sum(m.w.nbytes for m in network)
    print(f"\n{path.name}: {len(network)} matrices, {weight_bytes / 1e9:.3f} GB of weights")
    row: dict[str, Any] = {"model": path.name, "weight_gb": weight_bytes / 1e9, "threads": {}}
    for threads in args.threads:
        result: dict[str, Any] = {}
        result["read_gbs"] = _read_gbs(k, network, weight_bytes, threads, args.repeat)
        print(f"  threads {threads}: read {result['read_gbs']:.1f} GB/s")
        for name in args.matrix or DEFAULT_MATRICES:
            if name in tensors:
                result[name] = _bench_matrix(k, Matrix(tensors[name]), threads, args)
        result["per_token"] = _per_token(k, network, weight_bytes, threads, args.repeat)
        if args.llama:
            result["llama"] = _llama(path, threads)
            ratio = result["per_token"]["tok_s"] / result["llama"]["tok_s"]
            print(
                f"    llama.cpp decode {result['llama']['tok_s']:6.1f} tok/s "
                f"(whole step); our matmuls alone {ratio:.2f}x its speed"
            )
        row["threads"][threads] = result
    return row


def _read_gbs(
    k: Kernels, network: list[Matrix], weight_bytes: int, threads: int, repeat: int
) -> float:
    """A plain read of every matrix once, through the kernels' pool: GB/s."""

    def read_all() -> None:
        for m in network:
            k.read(m.w, threads)

    read_all()
    return weight_bytes / 1e9 / _median(read_all, repeat)


def _bench_matrix(k: Kernels, m: Matrix, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"type": m.type_name, "rows": m.rows, "cols": m.cols}
    x1 = rng.standard_normal((1, m.cols)).astype(np.float32)
    y1 = np.empty((1, m.rows), dtype=np.float32)
    calls = max(1, int(2e7 // m.w.nbytes))

    def decode() -> None:
        for _ in range(calls):
            m.run(k, x1, y1, threads)

    decode()
    t1 = _median(decode, args.repeat) / calls
    out["decode_us"], out["decode_gbs"] = t1 * 1e6, m.w.nbytes / t1 / 1e9
    xp = rng.standard_normal((args.prefill, m.cols)).astype(np.float32)
    yp = np.empty((args.prefill, m.rows), dtype=np.float32)
    tp = _median(lambda: m.run(k, xp, yp, threads), max(1, args.repeat // 2))
    flops = 2.0 * m.rows * m.cols * args.prefill
    out["prefill_ms"], out["prefill_gflops"] = tp * 1e3, flops / tp / 1e9
    print(
        f"    {m.name:<16} {m.type_name:<5} {m.rows:>5}x{m.cols:<5} "
        f"T=1 {t1 * 1e6:8.1f} us {out['decode_gbs']:6.1f} GB/s   "
        f"T={args.prefill} {tp * 1e3:8.1f} ms {out['prefill_gflops']:6.1f} GFLOP/s "
        f"({args.prefill / tp:7.0f} tok/s)"
    )
    return out


def _per_token(
    k: Kernels, network: list[Matrix], weight_bytes: int, threads: int, repeat: int
) -> dict[str, float]:
    """A decode step's matmuls: every matrix once at T=1, weights coming from memory."""
    rng = np.random.default_rng(1)
    xs = {m.cols: rng.standard_normal((1, m.cols)).astype(np.float32) for m in network}
    outs = [np.empty((1, m.rows), dtype=np.float32) for m in network]

    def step() -> None:
        for m, y in zip(network, outs, strict=True):
            m.run(k, xs[m.cols], y, threads)

    step()
    t = _median(step, repeat)
    print(
        f"    per token (matmuls only): {t * 1e3:7.1f} ms  {1 / t:6.1f} tok/s  "
        f"{weight_bytes / t / 1e9:5.1f} GB/s"
    )
    return {"ms": t * 1e3, "tok_s": 1 / t, "gbs": weight_bytes / t / 1e9}


def _network_order(tensors: dict[str, Any]) -> list[str]:
    """The matrices a decode step reads, in order; the output falls back to the embedding."""
    names = []
    layer = 0
    while f"blk.{layer}.attn_q" in tensors:
        names += [f"blk.{layer}.{n}" for n in LAYER_MATRICES if f"blk.{layer}.{n}" in tensors]
        layer += 1
    names.append("output" if "output" in tensors else "token_embd")
    return names


def _llama(path: Path, threads: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child-llama", str(path), "--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _child_llama(path: Path, threads: int) -> int:
    """llama.cpp's greedy decode speed on ``path``, timed as bench/generation.py does."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generation import STORY, _timed_stream

    from companion.llm.llamacpp_backend import LlamaCppLLM
    from companion.types import GenerationParams

    llm = LlamaCppLLM(path, name=path.stem, threads=threads)
    _timed_stream(llm, STORY, GenerationParams(max_tokens=8, temperature=0.0))
    runs = [
        _timed_stream(llm, STORY, GenerationParams(max_tokens=48, temperature=0.0))
        for _ in range(3)
    ]
    print(json.dumps({"tok_s": statistics.median(r["tok_s"] for r in runs)}))
    return 0


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _find(name: str) -> Path | None:
    for folder in (models_dir() / "gguf", Path.home() / ".cache" / "companion" / "models" / "gguf"):
        if (folder / name).is_file():
            return folder / name
    return None


def _ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("positive integers, e.g. 1,2")
    return values


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
