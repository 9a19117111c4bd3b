"""Keep the KV cache when the conversation window moves on.

When the history no longer fits, the prompt builder drops its oldest messages.
The new prompt is then the old one with a stretch cut out of the middle::

    cached:  [persona][dropped messages][kept messages ...][reply]
    prompt:  [persona][kept messages ...][reply][new message]

Prefilling the whole kept history again would take seconds on a CPU. Instead the
cache entries of the dropped stretch are evicted and the kept entries after it
are moved back to their new positions. With rotary position embeddings (RoPE)
moving a key by ``-d`` positions is a rotation of each frequency pair by
``-d * inv_freq``; values carry no position. The kept entries were computed
while the dropped messages were still in view, so this is a close approximation
of prefilling again (the "attention sink" / StreamingLLM result), not an exact
one; the persona at the front stays, which is what keeps it stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: A continuation shorter than this is not worth the shift (prefill it instead).
MIN_MATCH = 16


def find_continuation(
    cached: Sequence[int], prompt: Sequence[int], start: int
) -> tuple[int, int]:
    """Where ``prompt[start:]`` picks up again in ``cached`` after a cut.

    Returns ``(position, length)``: ``cached[position:position + length] ==
    prompt[start:start + length]`` with the longest such match at a position
    after ``start``; ``(0, 0)`` when there is none.
    """
    if start >= len(prompt) or start >= len(cached):
        return 0, 0
    first = prompt[start]
    best_pos, best_len = 0, 0
    limit = len(prompt) - start
    for pos in range(start + 1, len(cached)):
        if cached[pos] != first:
            continue
        n = 1
        top = min(limit, len(cached) - pos)
        while n < top and cached[pos + n] == prompt[start + n]:
            n += 1
        if n > best_len:
            best_pos, best_len = pos, n
            if n == top:
                break
    return best_pos, best_len


def rotary_inv_freq(model: Any) -> Any | None:
    """The model's RoPE inverse frequencies, or None when a shift is not exact
    for its position scheme (no RoPE found, or length-dependent scaling)."""
    config = getattr(model, "config", None)
    scaling = getattr(config, "rope_scaling", None) or {}
    kind = scaling.get("rope_type", scaling.get("type", "default")) if isinstance(
        scaling, dict
    ) else "default"
    if kind in ("dynamic", "longrope"):
        return None
    for name, module in model.named_modules():
        if name.endswith("rotary_emb") and hasattr(module, "inv_freq"):
            return module.inv_freq
    return None


def shift_cache(cache: Any, keep: int, cut_end: int, length: int, inv_freq: Any) -> bool:
    """Evict cache positions ``[keep, cut_end)`` and move ``[cut_end, cut_end + length)``
    back to start at ``keep`` (keys rotated); entries after that are dropped.

    Works on a transformers ``DynamicCache`` whose layers hold ``keys`` and
    ``values`` of shape ``[batch, heads, seq, head_dim]``; returns False (cache
    untouched) for any other layout.
    """
    import torch

    layers = getattr(cache, "layers", None)
    if not layers or any(
        getattr(layer, "keys", None) is None or getattr(layer, "is_sliding", False)
        for layer in layers
    ):
        return False
    rotary = inv_freq.numel() * 2
    if any(layer.keys.shape[-1] < rotary for layer in layers):
        return False
    delta = cut_end - keep
    for layer in layers:
        keys, values = layer.keys, layer.values
        moved = keys[:, :, cut_end : cut_end + length, :]
        angles = (-float(delta)) * inv_freq.to(torch.float32)
        cos = torch.cat([angles.cos(), angles.cos()]).to(moved.dtype)
        sin = torch.cat([angles.sin(), angles.sin()]).to(moved.dtype)
        part = moved[..., :rotary]
        half = rotary // 2
        rotated_half = torch.cat([-part[..., half:], part[..., :half]], dim=-1)
        turned = part * cos + rotated_half * sin
        if rotary < moved.shape[-1]:
            turned = torch.cat([turned, moved[..., rotary:]], dim=-1)
        layer.keys = torch.cat([keys[:, :, :keep, :], turned], dim=-2).contiguous()
        layer.values = torch.cat(
            [values[:, :, :keep, :], values[:, :, cut_end : cut_end + length, :]], dim=-2
        ).contiguous()
    return True
