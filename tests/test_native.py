"""The native kernels (companion.llm.native) against torch, on small random tensors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
native = pytest.importorskip("companion.llm.native")
quantize = pytest.importorskip("companion.llm.quantize")

K = native.kernels()
needs_kernels = pytest.mark.skipif(K is None, reason="no AVX2 CPU or no C compiler")


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).norm() / want.norm())


@needs_kernels
@pytest.mark.parametrize("m", [1, 5])
def test_int8_linear_matches_the_dequantized_product(m: int) -> None:
    assert K is not None
    torch.manual_seed(m)
    weight, bias = torch.randn(37, 96), torch.randn(37)  # rows not a multiple of the 4-row step
    q, scales = quantize.quantize_int8(weight)
    x = torch.randn(m, 96)
    want = torch.nn.functional.linear(x, q.float() * scales[:, None], bias)
    got = K.int8_linear(x, q, scales, bias, threads=2)
    assert _rel(got, want) < 0.01  # activations rounded to int8 blocks: ~0.5%
    # accumulate: the product is added into `out` (a residual)
    out = torch.ones(m, 37)
    K.int8_linear(x, q, scales, bias, threads=1, out=out)
    assert torch.allclose(out, got + 1, atol=1e-4)


@needs_kernels
@pytest.mark.parametrize("m", [1, 3])
def test_q4_linear_matches_the_dequantized_product(m: int) -> None:
    assert K is not None
    torch.manual_seed(m)
    weight = torch.randn(21, 64 * 3)  # 6 blocks: the 8-block step and the tail
    packed, scales, mins = quantize.quantize_int4(weight)
    layer = quantize.Int4Linear(packed, scales, mins, None)
    x = torch.randn(m, weight.shape[1])
    want = x @ quantize.dequantize_int4(packed, scales, mins).t()
    assert _rel(K.q4_linear(x, layer, None, threads=2), want) < 0.01
    wide = torch.randn(9, 32 * 19)  # 19 blocks: two 8-block steps and a tail of 3
    layer = quantize.Int4Linear(*quantize.quantize_int4(wide), None)
    x = torch.randn(m, wide.shape[1])
    want = x @ quantize.dequantize_int4(layer.qweight, layer.scales, layer.mins).t()
    assert _rel(K.q4_linear(x, layer, None, threads=1), want) < 0.01


@needs_kernels
@pytest.mark.parametrize("method", ["int8", "int4"])
def test_a_row_gets_the_same_bits_alone_or_in_a_batch(method: str) -> None:
    """Decode steps (one row) and prefills (many) take different loops; they must agree
    exactly, or a reply continued from a cached prefix would drift from a cold run."""
    assert K is not None
    torch.manual_seed(1)
    weight, bias = torch.randn(70, 32 * 19), torch.randn(70)  # 2 chunks of 8 blocks + 3
    x = torch.randn(6, weight.shape[1])
    if method == "int8":
        q, scales = quantize.quantize_int8(weight)
        batch = K.int8_linear(x, q, scales, bias, threads=2)
        rows = [K.int8_linear(x[i : i + 1], q, scales, bias, threads=1) for i in range(6)]
    else:
        layer = quantize.Int4Linear(*quantize.quantize_int4(weight), None)
        batch = K.q4_linear(x, layer, bias, threads=2)
        rows = [K.q4_linear(x[i : i + 1], layer, bias, threads=1) for i in range(6)]
    assert torch.equal(batch, torch.cat(rows))


@needs_kernels
def test_rmsnorm_rope_and_silu_gate_match_torch() -> None:
    assert K is not None
    torch.manual_seed(0)
    x, w = torch.randn(3, 64), torch.randn(64)
    want = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w
    assert torch.allclose(K.rmsnorm(x, w, 1e-6), want, atol=1e-5)

    heads, dim = 3, 16
    rows = torch.randn(2, heads * dim + 8)  # a tail that must stay untouched
    angles = torch.randn(2, dim // 2)
    cos, sin = angles.cos().contiguous(), angles.sin().contiguous()
    v = rows[:, : heads * dim].view(2, heads, dim)
    c2, s2 = torch.cat([cos, cos], -1)[:, None], torch.cat([sin, sin], -1)[:, None]
    rotated = torch.cat([-v[..., dim // 2 :], v[..., : dim // 2]], -1)
    want_rows = torch.cat([(v * c2 + rotated * s2).reshape(2, -1), rows[:, heads * dim :]], -1)
    K.rope_(rows, heads, dim, cos, sin)
    assert torch.allclose(rows, want_rows, atol=1e-5)

    gu = torch.randn(2, 10)
    want = torch.nn.functional.silu(gu[:, :5]) * gu[:, 5:]
    assert torch.allclose(K.silu_mul(gu), want, atol=1e-6)


@needs_kernels
@pytest.mark.parametrize(
    ("start", "rows", "dim"), [(32, 1, 16), (0, 7, 16), (20, 5, 64), (3, 2, 12)]
)
def test_causal_attention_matches_sdpa_with_grouped_heads(start: int, rows: int, dim: int) -> None:
    assert K is not None
    torch.manual_seed(start + rows)
    heads, kv_heads, capacity = 6, 2, 40
    total = start + rows
    keys, values = torch.randn(kv_heads, capacity, dim), torch.randn(kv_heads, capacity, dim)
    q = torch.randn(rows, heads * dim + 8)  # a row stride wider than the queries
    out = torch.empty(rows, heads * dim)
    rc = K.lib.companion_attend(
        q.data_ptr(), rows, q.shape[1], keys.data_ptr(), values.data_ptr(), heads, kv_heads,
        dim, capacity, start, 1 / math.sqrt(dim), out.data_ptr(), heads * dim, 2,
    )  # fmt: skip
    assert rc == 0
    mask = torch.arange(total)[None, :] <= torch.arange(start, total)[:, None]
    want = torch.nn.functional.scaled_dot_product_attention(
        q[:, : heads * dim].reshape(rows, heads, dim).transpose(0, 1)[None],
        keys[None, :, :total],
        values[None, :, :total],
        attn_mask=mask,
        enable_gqa=True,
    )
    assert torch.allclose(out, want[0].transpose(0, 1).reshape(rows, -1), atol=1e-5)


@needs_kernels
def test_wrong_shapes_and_dtypes_are_refused_before_the_kernel_runs() -> None:
    assert K is not None
    q, scales = quantize.quantize_int8(torch.randn(8, 64))
    with pytest.raises(ValueError, match="int8"):
        K.int8_linear(torch.randn(1, 64), q.float(), scales, None, threads=1)
    with pytest.raises(ValueError, match="shape"):
        K.int8_linear(torch.randn(1, 32), q, scales, None, threads=1)
    with pytest.raises(ValueError, match="contiguous"):
        K.int8_linear(torch.randn(64, 2).t()[:1], q, scales, None, threads=1)
    q40, s40 = quantize.quantize_int8(torch.randn(4, 40))
    with pytest.raises(ValueError, match="multiples of 32"):
        K.int8_linear(torch.randn(1, 40), q40, s40, None, threads=1)


@needs_kernels
def test_the_library_is_built_once_per_source(tmp_path: Path) -> None:
    first = native.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary left behind


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPANION_NATIVE", "0")
    native.kernels.cache_clear()
    try:
        assert native.kernels() is None
    finally:
        monkeypatch.delenv("COMPANION_NATIVE")
        native.kernels.cache_clear()


def test_no_compiler_means_no_kernels_not_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(OSError, match="no C compiler"):
        native.build(tmp_path)
