"""The lean forward pass (companion.llm.lean) against transformers' own, on tiny random models."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
quantize = pytest.importorskip("companion.llm.quantize")
lean = pytest.importorskip("companion.llm.lean")
native = pytest.importorskip("companion.llm.native")
from companion.llm.kvshift import shift_cache  # noqa: E402

pytestmark = pytest.mark.skipif(native.kernels() is None, reason="no AVX2 CPU or no C compiler")

IDS = [5, 17, 99, 3, 42, 8, 120, 64, 7, 33, 90, 11]


def tiny(kind: str, method: str, seed: int = 0) -> Any:
    """A 2-layer model of ``kind`` ("llama", "qwen2": biased q/k/v) with ``method`` weights."""
    torch.manual_seed(seed)
    sizes = dict(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=kind == "llama",
    )
    if kind == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**sizes))
    else:
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**sizes))
    model.eval()
    for name, module in list(model.named_modules()):
        if not isinstance(module, torch.nn.Linear):
            continue
        weight = module.weight.detach()
        bias = None if module.bias is None else module.bias.detach().float()
        if method == "int4" and name != "lm_head":
            new: torch.nn.Module = quantize.Int4Linear(*quantize.quantize_int4(weight), bias)
        else:
            q, scales = quantize.quantize_int8(weight)
            new = quantize.Int8Linear(q, scales.to(torch.bfloat16), bias)
        model.set_submodule(name, new)
    q, scales = quantize.quantize_int8(model.model.embed_tokens.weight.detach())
    model.model.embed_tokens = quantize.Int8Embedding(q, scales)
    return model


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> float:
    p, q = p_logits.log_softmax(-1), q_logits.log_softmax(-1)
    return float((p.exp() * (p - q)).sum(-1).mean())


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
@pytest.mark.parametrize("method", ["int8", "int4"])
def test_lean_logits_match_the_transformers_forward(kind: str, method: str) -> None:
    model = tiny(kind, method)
    with torch.inference_mode():
        want = model(input_ids=torch.tensor([IDS])).logits[0]
        fast = lean.build_lean(model)
        assert fast is not None
        got = fast.forward(IDS, fast.new_cache(), every=True)
        # the transformers forward still works after the weights were fused
        again = model(input_ids=torch.tensor([IDS])).logits[0]
    assert torch.equal(want, again)
    assert got.shape == want.shape
    assert _kl(want, got) < 0.01
    assert float((got.argmax(-1) == want.argmax(-1)).float().mean()) >= 0.9


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
@pytest.mark.parametrize("method", ["int8", "int4"])
def test_token_by_token_equals_one_prefill_and_crop_rewinds(kind: str, method: str) -> None:
    fast = lean.build_lean(tiny(kind, method))
    assert fast is not None
    with torch.inference_mode():
        whole = fast.forward(IDS, fast.new_cache(), every=True)
        cache = fast.new_cache()
        steps = [fast.forward(IDS[:4], cache)] + [fast.forward([t], cache) for t in IDS[4:]]
        assert cache.get_seq_length() == len(IDS)
        # the same bits: a reply continued from a cached prefix is a cold run's reply
        assert torch.equal(torch.stack(steps), whole[3:])
        cache.crop(-5)  # as the backend does when a prompt shares only a prefix
        assert cache.get_seq_length() == len(IDS) - 5
        redo = fast.forward(IDS[-5:], cache)
    assert torch.equal(redo, whole[-1])


def test_the_cache_grows_past_its_first_allocation() -> None:
    fast = lean.build_lean(tiny("llama", "int8"))
    assert fast is not None
    long_ids = [i % 128 for i in range(lean._FIRST_CAPACITY + 40)]
    with torch.inference_mode():
        cache = fast.new_cache()
        fast.forward(long_ids[:-1], cache)
        step = fast.forward(long_ids[-1:], cache)
        whole = fast.forward(long_ids, fast.new_cache())
    assert cache.layers[0].k.shape[2] >= len(long_ids)
    assert torch.equal(step, whole)


def test_a_window_shift_moves_the_lean_cache_as_it_moves_a_dynamic_one() -> None:
    model = tiny("llama", "int8")
    fast = lean.build_lean(model)
    assert fast is not None
    inv_freq = model.model.rotary_emb.inv_freq
    with torch.inference_mode():
        cache = fast.new_cache()
        fast.forward(IDS, cache)
        plain = SimpleNamespace(
            layers=[
                SimpleNamespace(keys=layer.keys.clone(), values=layer.values.clone())
                for layer in cache.layers
            ]
        )
        assert shift_cache(cache, 2, 6, 5, inv_freq)
        assert shift_cache(plain, 2, 6, 5, inv_freq)
    assert cache.get_seq_length() == 7
    for mine, theirs in zip(cache.layers, plain.layers, strict=True):
        assert torch.equal(mine.keys, theirs.keys) and torch.equal(mine.values, theirs.values)


def test_only_quantized_llama_and_qwen2_models_qualify() -> None:
    assert lean.eligible(tiny("llama", "int8"))
    full = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            vocab_size=64,
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=1,
            num_attention_heads=4,
        )
    )
    assert not lean.eligible(full)  # float32 weights: the transformers forward
    mixed = tiny("llama", "int8")
    layer = mixed.model.layers[0]
    layer.self_attn.k_proj = quantize.Int4Linear(*quantize.quantize_int4(torch.randn(32, 64)), None)
    assert not lean.eligible(mixed)  # a fused matrix needs one kind
    gelu = tiny("llama", "int8")
    gelu.config.hidden_act = "gelu"
    assert not lean.eligible(gelu)
