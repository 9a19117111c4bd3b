"""Moving the KV cache when the history window moves on (companion.llm.kvshift)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from companion.llm.kvshift import find_continuation, shift_cache


def test_find_continuation_finds_where_the_prompt_picks_up_after_a_cut() -> None:
    cached = [1, 2, 3, 10, 11, 12, 20, 21, 22, 23, 24]
    prompt = [1, 2, 3, 20, 21, 22, 23, 24, 99]
    assert find_continuation(cached, prompt, 3) == (6, 5)
    assert find_continuation(cached, [1, 2, 3, 77], 3) == (0, 0)
    assert find_continuation(cached, prompt, len(prompt)) == (0, 0)


def test_find_continuation_prefers_the_longest_match() -> None:
    cached = [0, 5, 6, 1, 5, 6, 7, 8]
    assert find_continuation(cached, [0, 5, 6, 7, 8, 9], 1) == (4, 4)


def _rope(x, positions, inv_freq, torch):  # the rotate-half RoPE of Llama/Qwen in transformers
    freqs = positions[:, None].float() * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * emb.cos() + rot * emb.sin()


def test_shifted_keys_equal_keys_embedded_at_the_new_positions() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    head_dim, seq = 8, 12
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    raw = torch.randn(1, 2, seq, head_dim)
    keys = _rope(raw, torch.arange(seq), inv_freq, torch)
    values = torch.randn(1, 2, seq, head_dim)
    layer = SimpleNamespace(keys=keys.clone(), values=values.clone(), is_sliding=False)
    cache = SimpleNamespace(layers=[layer])
    # keep positions 0-2, drop 3-6, move 7-11 back to 3-7
    assert shift_cache(cache, 3, 7, 5, inv_freq)
    expected = torch.cat([keys[:, :, :3], _rope(raw[:, :, 7:], torch.arange(3, 8), inv_freq,
                                                  torch)], dim=-2)
    assert torch.allclose(layer.keys, expected, atol=1e-5)
    assert torch.equal(layer.values, torch.cat([values[:, :, :3], values[:, :, 7:]], dim=-2))


def test_shift_refuses_caches_it_does_not_know() -> None:
    torch = pytest.importorskip("torch")
    assert not shift_cache(SimpleNamespace(), 1, 2, 3, torch.ones(4))
    sliding = SimpleNamespace(keys=torch.zeros(1, 1, 4, 8), values=None, is_sliding=True)
    assert not shift_cache(SimpleNamespace(layers=[sliding]), 1, 2, 1, torch.ones(4))
