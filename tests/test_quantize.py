"""Low-bit weights (companion.llm.quantize) on small random layers: no model needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from companion.errors import ModelError

torch = pytest.importorskip("torch")
quantize = pytest.importorskip("companion.llm.quantize")


def test_auto_is_int8_on_the_cpu_and_full_precision_on_a_gpu() -> None:
    assert quantize.resolve_method("auto", device="cpu") == quantize.CPU_DEFAULT
    assert quantize.resolve_method("auto", device="cuda") == "none"
    assert quantize.resolve_method("none", device="cuda") == "none"
    assert quantize.resolve_method("int8", device="cpu") == "int8"
    with pytest.raises(ModelError, match="for the CPU"):
        quantize.resolve_method("int4", device="cuda")
    with pytest.raises(ModelError, match="one of"):
        quantize.resolve_method("int3", device="cpu")


def test_int8_linear_matches_float_within_rounding() -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(96, 64), torch.randn(96)
    x = torch.randn(2, 3, 64)
    q, scales = quantize.quantize_int8(weight)
    layer = quantize.Int8Linear(q, scales.to(torch.bfloat16), bias)
    expected = torch.nn.functional.linear(x, weight, bias)
    got = layer(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected).abs().mean() / expected.abs().mean() < 0.02


def test_int4_is_exact_on_weights_that_are_already_4_bit() -> None:
    """A group's minimum and maximum are kept exactly: GGUF Q4 weights survive."""
    torch.manual_seed(0)
    n, k = 64, 2 * quantize.GROUP_SIZE
    levels = torch.randint(0, 16, (n, k)).float()
    levels[:, 0], levels[:, 1] = 0, 15  # every group spans the full range
    levels[:, quantize.GROUP_SIZE], levels[:, quantize.GROUP_SIZE + 1] = 0, 15
    weight = levels * 0.25 - 1.0  # bf16-exact scale and zero
    packed, scales, mins = quantize.quantize_int4(weight)
    assert torch.equal(quantize.dequantize_int4(packed, scales, mins), weight)
    layer = quantize.Int4Linear(packed, scales, mins, None)
    x = torch.eye(k)  # the output is the weight, transposed
    assert torch.allclose(layer(x), weight.t(), atol=1e-5)


def test_int4_linear_matches_float_within_4_bit_rounding() -> None:
    torch.manual_seed(0)
    weight = torch.randn(128, 4 * quantize.GROUP_SIZE)
    x = torch.randn(5, weight.shape[1])
    packed, scales, mins = quantize.quantize_int4(weight)
    got = quantize.Int4Linear(packed, scales, mins, None)(x)
    expected = x @ weight.t()
    assert (got - expected).abs().mean() / expected.abs().mean() < 0.12


def test_int4_linear_without_the_native_kernels_dequantizes_in_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from companion.llm import native

    torch.manual_seed(0)
    weight, bias = torch.randn(40, 2 * quantize.GROUP_SIZE), torch.randn(40)
    packed, scales, mins = quantize.quantize_int4(weight)
    layer = quantize.Int4Linear(packed, scales, mins, bias)
    x = torch.randn(3, weight.shape[1])
    exact = torch.nn.functional.linear(x, quantize.dequantize_int4(packed, scales, mins), bias)
    monkeypatch.setattr(native, "kernels", lambda: None)
    assert torch.allclose(layer(x), exact, atol=1e-5)


def test_int8_embedding_reads_dequantized_rows() -> None:
    torch.manual_seed(0)
    table = torch.randn(50, 16)
    q, scales = quantize.quantize_int8(table)
    rows = quantize.Int8Embedding(q, scales)(torch.tensor([[3, 7, 3]]))
    assert rows.shape == (1, 3, 16)
    assert torch.allclose(rows[0], table[[3, 7, 3]], atol=float(scales.max()))


def test_safetensors_reader_round_trips(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {
        "a": torch.randn(3, 4),
        "b": torch.arange(6, dtype=torch.int8).reshape(2, 3),
        "c": torch.randn(5).to(torch.bfloat16),
    }
    save_file(tensors, str(tmp_path / "x.safetensors"), metadata={"kinds": "{}"})
    back = dict(quantize.read_safetensors(tmp_path / "x.safetensors"))
    assert back.keys() == tensors.keys()
    assert all(torch.equal(back[k], v) for k, v in tensors.items())


def test_big_tables_are_quantized_in_row_blocks_with_the_same_result() -> None:
    torch.manual_seed(0)
    weight = torch.randn(quantize._ROWS + 320, 2 * quantize.GROUP_SIZE)
    x = torch.randn(3, weight.shape[1])
    packed, scales, mins = quantize.quantize_int4(weight)
    got = quantize.Int4Linear(packed, scales, mins, None)(x)
    expected = x @ weight.t()
    assert (got - expected).abs().mean() / expected.abs().mean() < 0.12
    q, scales = quantize.quantize_int8(weight)
    assert torch.allclose(q.float() * scales[:, None], weight, atol=float(scales.max()))


def test_written_copies_read_back_with_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    tensors = {
        "w": torch.randint(-127, 127, (4, 6), dtype=torch.int8),
        "s": torch.randn(4).to(torch.bfloat16),
        "p": torch.randint(0, 255, (3, 2), dtype=torch.uint8),
    }
    path = tmp_path / "q" / "x.safetensors"
    quantize._write_atomic(path, tensors, {"kinds": "{}"})
    back = load_file(str(path))
    assert all(torch.equal(back[k], v) for k, v in tensors.items())
    assert dict(quantize.read_safetensors(path)).keys() == tensors.keys()


def test_a_damaged_header_is_a_model_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    for blob in (
        b"",
        b"\xff" * 64,
        (10**9).to_bytes(8, "little") + b"{}",
        b"\x02\x00\x00\x00\x00\x00\x00\x00[]",
    ):
        path.write_bytes(blob)
        with pytest.raises(ModelError, match="damaged"):
            quantize.safetensors_header(path)


def test_a_damaged_cached_copy_is_made_again(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    folder = tmp_path / "tiny"
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    cache = tmp_path / "cache"
    _, built = quantize.load_quantized(folder, "int8", cache=cache)
    target = next(cache.glob("quantized/*/*.safetensors"))
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 2])
    said: list[str] = []
    model, rebuilt = quantize.load_quantized(folder, "int8", cache=cache, progress=said.append)
    assert built and rebuilt and "damaged" in said[0]
    assert target.read_bytes() == good
    ids = torch.tensor([[1, 2, 3]])
    with torch.inference_mode():
        assert model(input_ids=ids).logits.shape == (1, 3, 64)
