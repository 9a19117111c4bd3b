"""The GGUF kernels against float64 references, on random blocks and the shipped GGUFs.

Each matmul is checked twice: tightly against the same arithmetic in float64
(dequantized weights times the activations' own 8-bit form, as the kernel sees
them) and loosely against float64 ``W @ x`` (what quantizing the activations
costs). A token's results must not depend on the batch or the thread count.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader
from gguf.quants import dequantize, quantize

from companion.errors import ModelError
from companion.llm.gguf.kernels import (
    AVX2_FLAGS,
    PORTABLE_FLAGS,
    TILE8_FLAGS,
    Kernels,
    build,
    load_kernels,
    open_kernels,
)
from companion.paths import models_dir

GGUF_DIRS = [models_dir() / "gguf", Path.home() / ".cache" / "companion" / "models" / "gguf"]
GGUFS = sorted({p.name: p for d in GGUF_DIRS if d.is_dir() for p in d.glob("*.gguf")}.values())

TYPES = [Q.F32, Q.F16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q8_0, Q.Q4_K, Q.Q5_K, Q.Q6_K]
#: Where the block's f16 scales lie, for random K-quant blocks: (offset, value).
K_SCALES = {
    Q.Q4_K: [(0, 0.004), (2, 0.002)],
    Q.Q5_K: [(0, 0.002), (2, 0.001)],
    Q.Q6_K: [(208, 0.003)],
}
K_SIZES = {Q.Q4_K: 144, Q.Q5_K: 176, Q.Q6_K: 210}


def avx2_host() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text().split() if cpuinfo.exists() else []
    return all(f in flags for f in ("avx2", "fma", "f16c"))


@pytest.fixture(scope="module", params=["native", "tile8", "avx2", "portable"])
def k(request: pytest.FixtureRequest) -> Kernels:
    """The kernels as built here, with the 256-bit tile kernel, AVX2 without VNNI, and
    plain C: every path checked."""
    if request.param == "native":
        return load_kernels()
    if request.param == "tile8":
        if load_kernels().tile != 16:
            pytest.skip("no AVX-512 VNNI here: the native build is the 256-bit one")
        return open_kernels(build(flags=TILE8_FLAGS))
    if request.param == "avx2":
        if not avx2_host():
            pytest.skip("no AVX2/FMA/F16C here")
        return open_kernels(build(flags=AVX2_FLAGS))
    return open_kernels(build(flags=PORTABLE_FLAGS))


def random_weights(qtype: Q, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Blocks of ``rows x cols`` weights of ``qtype``, as the uint8 bytes of a file."""
    rng = np.random.default_rng(seed)
    if qtype in K_SIZES:  # gguf-py cannot quantize these: random blocks with sane scales
        blocks = rng.integers(0, 256, (rows * cols // 256, K_SIZES[qtype]), dtype=np.uint8)
        for offset, scale in K_SCALES[qtype]:
            halves = (scale * rng.uniform(0.5, 1.5, len(blocks))).astype(np.float16)
            blocks[:, offset : offset + 2] = halves.view(np.uint8).reshape(-1, 2)
        return blocks.reshape(-1)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    return np.ascontiguousarray(quantize(w, qtype)).view(np.uint8).reshape(-1)


@cache
def reader(path: Path) -> GGUFReader:
    return GGUFReader(str(path))


def real_weights(path: Path, qtype: Q, rows: int) -> tuple[np.ndarray, int, int] | None:
    """The first ``rows`` rows of the file's first matrix of ``qtype``, or None."""
    for t in reader(path).tensors:
        if t.tensor_type == qtype and len(t.shape) == 2:
            cols, n = int(t.shape[0]), min(rows, int(t.shape[1]))
            data = t.data.reshape(-1).view(np.uint8)
            return data[: n * (t.n_bytes // int(t.shape[1]))], n, cols
    return None


def dequantized(qtype: Q, w: np.ndarray, rows: int) -> np.ndarray:
    return np.asarray(dequantize(w.reshape(rows, -1), qtype), dtype=np.float64)


def reference(
    k: Kernels, qtype: Q, w: np.ndarray, rows: int, cols: int, x: np.ndarray
) -> np.ndarray:
    """The kernel's arithmetic in float64: dequantized W times x's 8-bit form."""
    wd = dequantized(qtype, w, rows)
    if qtype in (Q.F32, Q.F16):
        return np.asarray(x.astype(np.float64) @ wd.T)
    a = k.quantize(qtype, x)
    out: np.ndarray = a.values() @ wd.T
    if qtype == Q.Q4_1:  # llama.cpp's Q8_1: the min times the f16-rounded d * sum(q)
        mins = w.reshape(rows, cols // 32, 20)[:, :, 2:4].copy().view(np.float16)[..., 0]
        exact = (a.qs.reshape(len(x), -1, 32).sum(-1) * a.d.astype(np.float64)) @ mins.T
        out += a.s.astype(np.float64) @ mins.astype(np.float64).T - exact
    return out


def check_matmul(k: Kernels, qtype: Q, w: np.ndarray, rows: int, cols: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((37, cols)).astype(np.float32)  # tiles of 8 or 16, and the rest
    out = np.empty((37, rows), dtype=np.float32)
    k.matmul(qtype, w, rows, cols, x, out, threads=2)

    tight = reference(k, qtype, w, rows, cols, x)
    scale = np.abs(tight).max()
    assert np.abs(out - tight).max() <= 2e-5 * scale, qtype.name
    exact = x.astype(np.float64) @ dequantized(qtype, w, rows).T
    assert np.linalg.norm(out - exact) <= 0.02 * np.linalg.norm(exact), qtype.name

    for t in range(len(x)):  # one token alone, one thread: the same bits
        alone = np.empty((1, rows), dtype=np.float32)
        k.matmul(qtype, w, rows, cols, x[t : t + 1].copy(), alone, threads=1)
        assert np.array_equal(alone[0], out[t]), (qtype.name, t)
    seven = np.empty((7, rows), dtype=np.float32)
    k.matmul(qtype, w, rows, cols, x[:7].copy(), seven, threads=1)
    assert np.array_equal(seven, out[:7])
    for a, b in ((5, 25), (0, 14), (2, 31)):  # other tile boundaries, padded last tiles
        part = np.empty((b - a, rows), dtype=np.float32)
        k.matmul(qtype, w, rows, cols, x[a:b].copy(), part, threads=2)
        assert np.array_equal(part, out[a:b]), (qtype.name, a, b)


@pytest.mark.parametrize("qtype", TYPES, ids=lambda q: q.name)
def test_matmul_on_random_blocks(k: Kernels, qtype: Q) -> None:
    rows, cols = 45, 512
    check_matmul(k, qtype, random_weights(qtype, rows, cols), rows, cols)


@pytest.mark.parametrize("path", GGUFS, ids=lambda p: p.name)
def test_matmul_on_the_shipped_ggufs(k: Kernels, path: Path) -> None:
    found = 0
    for qtype in TYPES:
        real = real_weights(path, qtype, rows=40)
        if real is not None:
            w, rows, cols = real
            check_matmul(k, qtype, w, rows, cols)
            assert np.array_equal(
                k.get_rows(qtype, w, rows, cols, np.array([0, rows - 1, 3], dtype=np.int32)),
                dequantized(qtype, w, rows)[[0, rows - 1, 3]].astype(np.float32),
            )
            found += 1
    assert found >= 2


def test_matmul_adds_bias_and_accumulates(k: Kernels) -> None:
    rows, cols = 33, 256
    w = random_weights(Q.Q4_K, rows, cols)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, cols)).astype(np.float32)
    bias = rng.standard_normal(rows).astype(np.float32)
    plain = np.empty((3, rows), dtype=np.float32)
    k.matmul(Q.Q4_K, w, rows, cols, x, plain)
    with_bias = np.empty_like(plain)
    k.matmul(Q.Q4_K, w, rows, cols, x, with_bias, bias=bias, threads=2)
    assert np.array_equal(with_bias, plain + bias)
    residual = rng.standard_normal((3, rows)).astype(np.float32)
    summed = residual.copy()
    k.matmul(Q.Q4_K, w, rows, cols, x, summed, bias=bias, accumulate=True)
    assert np.array_equal(summed, residual + (plain + bias))


@pytest.mark.parametrize("qtype", TYPES, ids=lambda q: q.name)
def test_get_rows_equals_gguf_dequantize(k: Kernels, qtype: Q) -> None:
    rows, cols = 12, 512
    w = random_weights(qtype, rows, cols, seed=3)
    ids = np.array([5, 0, 11, 5], dtype=np.int32)
    expected = dequantized(qtype, w, rows)[ids].astype(np.float32)
    assert np.array_equal(k.get_rows(qtype, w, rows, cols, ids), expected)


def test_q8_0_activations_match_gguf(k: Kernels) -> None:
    x = np.random.default_rng(4).standard_normal((16, 1024)).astype(np.float32)
    a = k.quantize(Q.Q8_0, x)
    blocks = quantize(x, Q.Q8_0).reshape(16, -1, 34)
    assert np.array_equal(a.d, blocks[:, :, :2].copy().view(np.float16)[..., 0].astype(np.float32))
    theirs = blocks[:, :, 2:].copy().view(np.int8).reshape(16, -1)
    # gguf-py rounds halves away from zero and llama.cpp's AVX2 path to even: rare ties
    assert np.mean(a.qs == theirs) > 0.999
    assert np.abs(a.qs.astype(int) - theirs).max() <= 1
    q81 = k.quantize(Q.Q4_1, x)
    assert np.array_equal(q81.qs, a.qs)
    sums = q81.qs.reshape(16, -1, 32).sum(-1)
    assert np.allclose(q81.s, a.d * sums, rtol=2e-3)


def test_q8_k_activations_match_llama_cpp_reference(k: Kernels) -> None:
    x = np.random.default_rng(5).standard_normal((4, 512)).astype(np.float32)
    x[1, :256] = 0.0  # an all-zero block
    a = k.quantize(Q.Q6_K, x)
    blocks = x.reshape(4, 2, 256)
    big = np.take_along_axis(blocks, np.abs(blocks).argmax(-1)[..., None], -1)
    with np.errstate(divide="ignore"):
        iscale = np.where(big == 0, 0, np.float32(-127.0) / big).astype(np.float32)
    qs = np.minimum(np.rint(iscale * blocks), 127).astype(np.int8)
    assert np.array_equal(a.qs, qs.reshape(4, 512))
    with np.errstate(divide="ignore"):
        d = np.where(iscale == 0, 0, np.float32(1.0) / iscale)[..., 0]
    assert np.array_equal(a.d, d.astype(np.float32))
    assert np.array_equal(a.bsums, qs.reshape(4, 32, 16).sum(-1).astype(np.int16))


def test_rmsnorm(k: Kernels) -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 896)).astype(np.float32)
    w = rng.standard_normal(896).astype(np.float32)
    out = np.empty_like(x)
    k.rmsnorm(x, w, 1e-6, out)
    x64 = x.astype(np.float64)
    expected = x64 / np.sqrt((x64**2).mean(-1, keepdims=True) + 1e-6) * w
    assert np.allclose(out, expected, rtol=1e-5, atol=1e-6)
    k.rmsnorm(x, w, 1e-6, x)  # in place
    assert np.array_equal(x, out)


@pytest.mark.parametrize("neox", [True, False], ids=["neox", "normal"])
def test_rope(k: Kernels, neox: bool) -> None:
    heads, dim, base = 3, 64, 10000.0
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, heads * dim)).astype(np.float32)
    pos = np.array([0, 1, 2, 17, 100, 300], dtype=np.int32)
    got = x.copy()
    k.rope(got, pos, heads, dim, base, neox)
    theta = pos[:, None].astype(np.float64) * base ** (-2.0 * np.arange(dim // 2) / dim)
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    v = x.astype(np.float64).reshape(6, heads, dim)
    if neox:
        a, b = v[..., : dim // 2], v[..., dim // 2 :]
        expected = np.concatenate([a * cos - b * sin, a * sin + b * cos], -1)
    else:
        a, b = v[..., 0::2], v[..., 1::2]
        expected = np.stack([a * cos - b * sin, a * sin + b * cos], -1)
    assert np.allclose(got, expected.reshape(6, -1), atol=2e-4)
    assert np.array_equal(got[0], x[0])  # position 0 is the identity


def attention_reference(
    q: np.ndarray, kc: np.ndarray, vc: np.ndarray, start: int, heads: int, dim: int
) -> np.ndarray:
    kv_heads = kc.shape[0]
    out = np.zeros((len(q), heads * dim))
    for t in range(len(q)):
        for h in range(heads):
            kvh = h // (heads // kv_heads)
            n = start + t + 1
            s = kc[kvh, :n].astype(np.float64) @ q[t, h * dim : (h + 1) * dim] / np.sqrt(dim)
            p = np.exp(s - s.max())
            out[t, h * dim : (h + 1) * dim] = (p / p.sum()) @ vc[kvh, :n]
    return out


@pytest.mark.parametrize(("dim", "cap", "start"), [(64, 20, 4), (128, 300, 250), (36, 20, 0)])
def test_attention_is_causal_with_gqa_and_keeps_the_prefix(
    k: Kernels, dim: int, cap: int, start: int
) -> None:
    heads, kv_heads, t = 6, 2, 7
    rng = np.random.default_rng(8)
    kc = rng.standard_normal((kv_heads, cap, dim)).astype(np.float32)
    vc = rng.standard_normal((kv_heads, cap, dim)).astype(np.float32)
    q = rng.standard_normal((t, heads * dim)).astype(np.float32)
    out = np.empty_like(q)
    k.attention(q, kc, vc, start, t, heads, kv_heads, dim, out, threads=2)
    assert np.allclose(out, attention_reference(q, kc, vc, start, heads, dim), atol=2e-5)
    for i in range(t):
        alone = np.empty((1, heads * dim), dtype=np.float32)
        k.attention(q[i : i + 1].copy(), kc, vc, start + i, 1, heads, kv_heads, dim, alone, 1)
        assert np.array_equal(alone[0], out[i])


def test_silu_mul_side_by_side_and_apart(k: Kernels) -> None:
    rng = np.random.default_rng(9)
    gate_up = (4 * rng.standard_normal((3, 2 * 45))).astype(np.float32)
    gate_up[0, :3] = [-100.0, 100.0, 0.0]
    g, u = gate_up[:, :45].astype(np.float64), gate_up[:, 45:].astype(np.float64)
    expected = g / (1 + np.exp(-g)) * u
    out = np.empty((3, 45), dtype=np.float32)
    k.silu_mul(gate_up, out)
    assert np.allclose(out, expected, rtol=1e-5, atol=1e-7)
    apart = np.empty_like(out)
    k.silu_mul(
        np.ascontiguousarray(gate_up[:, :45]), apart, up=np.ascontiguousarray(gate_up[:, 45:])
    )
    assert np.array_equal(apart, out)


def test_bad_weights_are_one_line_model_errors(k: Kernels) -> None:
    w = random_weights(Q.Q4_0, 8, 64)
    x = np.zeros((1, 64), dtype=np.float32)
    out = np.empty((1, 8), dtype=np.float32)
    with pytest.raises(
        ModelError, match=r"^8x64 Q4_0 \(2\) weights need 288 bytes, the tensor has 270$"
    ):
        k.matmul(Q.Q4_0, w[:-18], 8, 64, x, out)
    with pytest.raises(ModelError, match=r"block type Q2_K \(10\) is not supported"):
        k.matmul(Q.Q2_K, w, 8, 64, x, out)
    with pytest.raises(ModelError, match=r"not whole Q6_K \(14\) blocks of 256"):
        k.get_rows(Q.Q6_K, w, 8, 64, np.zeros(1, dtype=np.int32))
    with pytest.raises(ModelError) as info:
        k.matmul(Q.Q4_0, w[:-1], 8, 64, x, out)
    assert "\n" not in str(info.value)


def test_bad_arguments_are_value_errors(k: Kernels) -> None:
    w = random_weights(Q.Q8_0, 8, 64)
    x = np.zeros((2, 64), dtype=np.float32)
    out = np.empty((2, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="x must be a C-contiguous float32"):
        k.matmul(Q.Q8_0, w, 8, 64, x.astype(np.float64), out)
    with pytest.raises(ValueError, match="x must be a C-contiguous float32"):
        k.matmul(Q.Q8_0, w, 8, 64, np.zeros((2, 128), np.float32)[:, ::2], out)
    with pytest.raises(ValueError, match=r"out must be .*\[2x8\]"):
        k.matmul(Q.Q8_0, w, 8, 64, x, out[:1])
    with pytest.raises(ValueError, match="uint8"):
        k.matmul(Q.Q8_0, w.view(np.int8), 8, 64, x, out)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 8\)"):
        k.get_rows(Q.Q8_0, w, 8, 64, np.array([8], dtype=np.int32))
    cache = np.zeros((2, 4, 64), dtype=np.float32)
    q = np.zeros((2, 4 * 64), dtype=np.float32)
    with pytest.raises(ValueError, match="exceed the cache"):
        k.attention(q, cache, cache, 3, 2, 4, 2, 64, np.empty_like(q))
    with pytest.raises(ValueError, match="do not split"):
        k.attention(q, cache, cache, 0, 2, 4, 3, 64, np.empty_like(q))
    with pytest.raises(ValueError, match="even"):
        k.rope(q, np.zeros(2, dtype=np.int32), 4, 63, 1e4, True)


def test_the_pool_serves_concurrent_callers(k: Kernels) -> None:
    rows, cols = 256, 512
    w = random_weights(Q.Q4_K, rows, cols)
    x = np.random.default_rng(10).standard_normal((4, cols)).astype(np.float32)
    expected = np.empty((4, rows), dtype=np.float32)
    k.matmul(Q.Q4_K, w, rows, cols, x, expected, threads=1)
    results: list[bool] = []

    def run() -> None:
        for _ in range(50):
            out = np.empty_like(expected)
            k.matmul(Q.Q4_K, w, rows, cols, x, out, threads=3)
            results.append(bool(np.array_equal(out, expected)))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 150 and all(results)
    assert 1 <= k.pool_workers() <= 63


def test_the_native_build_uses_avx2_where_the_cpu_has_it() -> None:
    if not avx2_host():
        pytest.skip("no AVX2/FMA/F16C here")
    assert load_kernels().simd
    assert open_kernels(build(flags=AVX2_FLAGS)).isa == "AVX2"
    assert open_kernels(build(flags=PORTABLE_FLAGS)).isa == "plain C"


def test_rope_by_minus_d_moves_a_key_back_d_positions() -> None:
    """What a KV-cache shift relies on: rotations compose, rope(rope(x, p), -d) = rope(x, p-d)."""
    from companion.llm.gguf.kernels import load_kernels

    k = load_kernels()
    rng = np.random.default_rng(3)
    for neox in (True, False):
        x = rng.normal(size=(5, 64)).astype(np.float32)
        at = np.array([40, 41, 42, 43, 44], dtype=np.int32)
        moved = x.copy()
        k.rope(moved, at, 1, 64, 10000.0, neox)
        k.rope(moved, np.full(5, -17, dtype=np.int32), 1, 64, 10000.0, neox)
        direct = x.copy()
        k.rope(direct, at - 17, 1, 64, 10000.0, neox)
        assert np.allclose(moved, direct, atol=1e-4)
