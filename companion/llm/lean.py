"""A lean forward pass for int8/int4 Llama/Qwen2-family models on the CPU.

transformers' modules spend about half a millisecond of Python and small tensor
operations per layer per token, which is most of a decode step for a small
model (SmolLM2 has 30 layers and reads only 134 MB of int8 weights per token).
For the models that are plain Llama/Qwen2 decoders with int8 or int4 weights (what
:mod:`companion.llm.quantize` builds on the CPU) this module runs the same
computation with the weights of the loaded transformers model, in a dozen calls
per layer:

- the query/key/value and gate/up projections fused into one matrix each (the
  model's own modules are re-pointed at slices of the fused matrices, so no
  byte is held twice and the transformers forward still works);
- the matrix products, RMSNorm, rotary embedding and SiLU gate in the native
  kernels (:mod:`companion.llm.native`), residual additions folded into the
  products;
- attention in the native kernel too (keys in blocks with a running softmax),
  on a preallocated key/value cache (:class:`LeanCache`) that grows by doubling,
  not by copying the whole cache each token as a ``DynamicCache`` does.

Every position is computed by the same code in the same order whether it comes
in a prefill or alone in a decode step, so a reply continued from a cached
prefix is bit for bit the reply a cold run of the whole prompt gives (the
transformers forward only promises that up to rounding).

Outputs match the transformers forward to int8 activation rounding
(``tests/test_lean.py`` checks the KL divergence and next-token agreement on tiny
random Llama and Qwen2 models; the quality guard checks a real model against
its float32 reference). :func:`build_lean` takes a loaded transformers model,
:func:`lean_from_tensors` the cached quantized copy with no transformers model at
all; both return None for anything else, and the backend keeps the transformers
forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch

from companion.llm.native import BLOCK, Kernels, kernels

#: Architectures whose decoder layer this module reproduces.
ARCHITECTURES = ("llama", "qwen2")
#: First cache allocation (tokens); it doubles when full.
_FIRST_CAPACITY = 256


class KVLayer:
    """One layer's keys and values, ``[1, heads, capacity, head_dim]`` each, first ``length`` used.

    ``keys``/``values`` read as views of the used part and can be assigned
    (as :func:`companion.llm.kvshift.shift_cache` does) to replace it.
    """

    is_sliding = False

    def __init__(self, heads: int, head_dim: int, limit: int) -> None:
        self.heads, self.head_dim, self.limit = heads, head_dim, limit
        self.k = torch.empty((1, heads, 0, head_dim))
        self.v = torch.empty((1, heads, 0, head_dim))
        self.length = 0

    @property
    def keys(self) -> torch.Tensor:
        return self.k[:, :, : self.length]

    @keys.setter
    def keys(self, value: torch.Tensor) -> None:
        self.reserve(value.shape[2])
        self.k[:, :, : value.shape[2]].copy_(value)
        self.length = value.shape[2]

    @property
    def values(self) -> torch.Tensor:
        return self.v[:, :, : self.length]

    @values.setter
    def values(self, value: torch.Tensor) -> None:
        self.reserve(value.shape[2])
        self.v[:, :, : value.shape[2]].copy_(value)
        self.length = value.shape[2]

    def reserve(self, total: int) -> None:
        capacity = self.k.shape[2]
        if total <= capacity:
            return
        new = max(_FIRST_CAPACITY, capacity)
        while new < total:
            new *= 2
        new = max(total, min(new, self.limit))
        for name in ("k", "v"):
            old = getattr(self, name)
            grown = torch.empty((1, self.heads, new, self.head_dim))
            grown[:, :, : self.length] = old[:, :, : self.length]
            setattr(self, name, grown)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Add ``t`` positions: ``k``/``v`` are ``[t, heads, head_dim]``."""
        t = k.shape[0]
        self.reserve(self.length + t)
        end = self.length + t
        self.k[0, :, self.length : end] = k.transpose(0, 1)
        self.v[0, :, self.length : end] = v.transpose(0, 1)
        self.length = end


class LeanCache:
    """The key/value cache of :class:`LeanModel`, with the parts of transformers'
    cache interface the backend uses (``get_seq_length``, ``crop``, ``layers``)."""

    def __init__(self, layers: int, heads: int, head_dim: int, limit: int) -> None:
        self.layers = [KVLayer(heads, head_dim, limit) for _ in range(layers)]

    def get_seq_length(self) -> int:
        return self.layers[0].length

    def crop(self, length: int) -> None:
        """Keep the first ``length`` positions (a negative count drops that many from the end)."""
        keep = length if length >= 0 else max(0, self.get_seq_length() + length)
        for layer in self.layers:
            layer.length = min(layer.length, keep)


class _Layer:
    """One decoder layer's weights, fused and contiguous, and the pointers the kernels take."""

    def __init__(self, layer: Any, native: Kernels) -> None:
        attn, mlp = layer.self_attn, layer.mlp
        self.qkv = _Matrix([attn.q_proj, attn.k_proj, attn.v_proj], native)
        self.o = _Matrix([attn.o_proj], native)
        self.gate_up = _Matrix([mlp.gate_proj, mlp.up_proj], native)
        self.down = _Matrix([mlp.down_proj], native)
        self.norm_in = _vector(layer.input_layernorm.weight)
        self.norm_post = _vector(layer.post_attention_layernorm.weight)
        self.norm_in_p = self.norm_in.data_ptr()
        self.norm_post_p = self.norm_post.data_ptr()


class _Matrix:
    """The weights of one or more quantized linear modules sharing an input (rows
    stacked), with float32 bias, and the kernel and arguments that multiply them.

    The modules are re-pointed at their slices, so that no byte is held twice.
    """

    def __init__(self, modules: list[Any], native: Kernels) -> None:
        from companion.llm.quantize import Int4Linear

        int4 = isinstance(modules[0], Int4Linear)
        names = ("qweight", "scales", "mins") if int4 else ("qweight",)
        parts = {name: _stack([m._buffers[name] for m in modules]) for name in names}
        row = 0
        for m in modules:
            for name in names:
                m._buffers[name] = parts[name][row : row + m.out_features]
            row += m.out_features
        self.parts = parts
        self.rows, self.cols = row, modules[0].in_features
        self.bias: torch.Tensor | None = None
        if any(m.bias is not None for m in modules):
            self.bias = torch.cat(
                [
                    m.bias.float() if m.bias is not None else torch.zeros(m.out_features)
                    for m in modules
                ]
            ).contiguous()
        bias = None if self.bias is None else self.bias.data_ptr()
        #: ``kernel(x, M, K, *args, y, accumulate, threads)``
        self.kind = type(modules[0]).__name__
        if int4:
            self.kernel = native.lib.companion_q4_linear
            self.args: tuple[Any, ...] = (
                parts["qweight"].data_ptr(),
                parts["scales"].data_ptr(),
                parts["mins"].data_ptr(),
                bias,
                self.rows,
            )
        else:
            self.scales = torch.cat([m.scales.float() for m in modules]).contiguous()
            self.kernel = native.lib.companion_int8_linear
            self.args = (parts["qweight"].data_ptr(), self.scales.data_ptr(), bias, self.rows)

    def __call__(self, x: int, t: int, y: int, accumulate: int, threads: int) -> None:
        _ok(self.kernel(x, t, self.cols, *self.args, y, accumulate, threads))


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    return (tensors[0] if len(tensors) == 1 else torch.cat(tensors)).contiguous()


class LeanModel:
    """The forward pass of a loaded int8/int4 Llama/Qwen2 model (see the module doc)."""

    def __init__(self, model: Any, native: Kernels) -> None:
        config = model.config
        self.native = native
        self.lib = native.lib
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(getattr(config, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.eps = float(config.rms_norm_eps)
        self.limit = int(getattr(config, "max_position_embeddings", 0) or 32768)
        inner = model.model
        self.embed = inner.embed_tokens
        self.layers = [_Layer(layer, native) for layer in inner.layers]
        self.norm = _vector(inner.norm.weight)
        self.head = _Matrix([model.lm_head], native)
        rotary = inner.rotary_emb
        self.inv_freq = rotary.inv_freq.detach().float().clone()
        self.rope_scale = float(getattr(rotary, "attention_scaling", 1.0) or 1.0)
        self.hidden = int(config.hidden_size)
        self.q_width = self.heads * self.head_dim
        self.kv_width = self.kv_heads * self.head_dim
        self.qkv_width = self.layers[0].qkv.rows
        self.inner_width = self.layers[0].down.cols
        self.scale = self.head_dim**-0.5
        self._cos = self._sin = torch.empty((0, self.head_dim // 2))

    def _rotary(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin ``[count, head_dim / 2]`` for positions ``start...``, read from a
        table (so that a position gets the same bits in any batch), grown by doubling."""
        end = start + count
        if self._cos.shape[0] < end:
            size = max(_FIRST_CAPACITY, self._cos.shape[0])
            while size < end:
                size *= 2
            angles = torch.outer(torch.arange(size, dtype=torch.float32), self.inv_freq)
            self._cos = (angles.cos() * self.rope_scale).contiguous()
            self._sin = (angles.sin() * self.rope_scale).contiguous()
        return self._cos[start:end], self._sin[start:end]

    def weight_kinds(self) -> list[str]:
        matrices = [self.head] + [
            m for layer in self.layers for m in (layer.qkv, layer.o, layer.gate_up, layer.down)
        ]
        return sorted({m.kind for m in matrices})

    def new_cache(self) -> LeanCache:
        return LeanCache(len(self.layers), self.kv_heads, self.head_dim, self.limit)

    def forward(self, ids: Sequence[int], cache: LeanCache, *, every: bool = False) -> torch.Tensor:
        """Run ``ids`` after the ``cache``'s positions and add them to it; return the
        last position's logits ``[vocab]`` (every position's ``[t, vocab]`` with ``every``)."""
        lib, threads = self.lib, torch.get_num_threads()
        t, start = len(ids), cache.get_seq_length()
        if t == 0:
            raise ValueError("nothing to run")
        cos, sin = self._rotary(start, t)
        d, q_w, kv_w, hd = self.hidden, self.q_width, self.kv_width, self.head_dim
        x = self.embed(torch.tensor(list(ids), dtype=torch.long)).reshape(t, d).contiguous()
        h, qkv = torch.empty((t, d)), torch.empty((t, self.qkv_width))
        attn = torch.empty((t, q_w))
        gu, act = torch.empty((t, 2 * self.inner_width)), torch.empty((t, self.inner_width))
        xp, hp, qkvp, attnp = x.data_ptr(), h.data_ptr(), qkv.data_ptr(), attn.data_ptr()
        gup, actp = gu.data_ptr(), act.data_ptr()
        cosp, sinp = cos.data_ptr(), sin.data_ptr()
        rmsnorm = lib.companion_rmsnorm
        for layer, kv in zip(self.layers, cache.layers, strict=True):
            rmsnorm(xp, t, d, layer.norm_in_p, self.eps, hp)
            layer.qkv(hp, t, qkvp, 0, threads)
            lib.companion_rope(qkvp, t, self.qkv_width, self.heads + self.kv_heads, hd, cosp, sinp)
            kv.append(
                qkv[:, q_w : q_w + kv_w].view(t, self.kv_heads, hd),
                qkv[:, q_w + kv_w :].view(t, self.kv_heads, hd),
            )
            _ok(
                lib.companion_attend(
                    qkvp, t, self.qkv_width, kv.k.data_ptr(), kv.v.data_ptr(), self.heads,
                    self.kv_heads, hd, kv.k.shape[2], start, self.scale, attnp, q_w, threads,
                )
            )  # fmt: skip
            layer.o(attnp, t, xp, 1, threads)
            rmsnorm(xp, t, d, layer.norm_post_p, self.eps, hp)
            layer.gate_up(hp, t, gup, 0, threads)
            lib.companion_silu_mul(gup, t, self.inner_width, actp)
            layer.down(actp, t, xp, 1, threads)
        last = x if every else x[-1:].contiguous()
        rows = last.shape[0]
        normed = torch.empty_like(last)
        rmsnorm(last.data_ptr(), rows, d, self.norm.data_ptr(), self.eps, normed.data_ptr())
        logits = torch.empty((rows, self.head.rows))
        self.head(normed.data_ptr(), rows, logits.data_ptr(), 0, threads)
        return logits if every else logits[0]


def _ok(rc: int) -> None:
    if rc != 0:
        raise MemoryError("the native kernels could not allocate their scratch space")


def lean_from_tensors(
    config: Any, tensors: dict[str, torch.Tensor], kinds: dict[str, str]
) -> LeanModel | None:
    """A :class:`LeanModel` straight from a quantized copy's tensors (see
    :func:`companion.llm.quantize.read_quantized`) and the model's config, with no
    transformers model object: importing transformers' modeling code alone takes
    about 130 MB. None when the model does not qualify. The tensors it uses are
    taken out of ``tensors``."""
    from companion.llm.quantize import Int4Linear, Int8Embedding, Int8Linear

    native = kernels()
    inv_freq = _rope_frequencies(config)
    if native is None or inv_freq is None:
        return None

    # Tensors are taken out of ``tensors`` as they are used, so that each one
    # is freed as soon as its fused copy is made (not held to the end).
    def linear(name: str) -> Any:
        kind = kinds.get(name, "")
        if kind.startswith("tied:"):
            source = kind.removeprefix("tied:")
            return (
                Int8Linear(embed.qweight, embed.scales.to(torch.bfloat16), None)
                if source == "model.embed_tokens"
                else _missing(name)
            )
        bias = tensors.pop(f"{name}.bias", None)
        if kind == "int8":
            return Int8Linear(tensors.pop(f"{name}.qweight"), tensors.pop(f"{name}.scales"), bias)
        if kind == "int4":
            return Int4Linear(
                tensors.pop(f"{name}.qweight"),
                tensors.pop(f"{name}.scales"),
                tensors.pop(f"{name}.mins"),
                bias,
            )
        return _missing(name)

    def norm(name: str) -> SimpleNamespace:
        return SimpleNamespace(weight=tensors.pop(f"{name}.weight"))

    try:
        embed = Int8Embedding(
            tensors.pop("model.embed_tokens.qweight"), tensors.pop("model.embed_tokens.scales")
        )
        layers = [
            SimpleNamespace(
                self_attn=SimpleNamespace(
                    **{
                        p: linear(f"model.layers.{i}.self_attn.{p}")
                        for p in ("q_proj", "k_proj", "v_proj", "o_proj")
                    }
                ),
                mlp=SimpleNamespace(
                    **{
                        p: linear(f"model.layers.{i}.mlp.{p}")
                        for p in ("gate_proj", "up_proj", "down_proj")
                    }
                ),
                input_layernorm=norm(f"model.layers.{i}.input_layernorm"),
                post_attention_layernorm=norm(f"model.layers.{i}.post_attention_layernorm"),
            )
            for i in range(int(config.num_hidden_layers))
        ]
        inner = SimpleNamespace(
            embed_tokens=embed,
            layers=layers,
            norm=norm("model.norm"),
            rotary_emb=SimpleNamespace(inv_freq=inv_freq[0], attention_scaling=inv_freq[1]),
        )
        model = SimpleNamespace(config=config, model=inner, lm_head=linear("lm_head"))
    except KeyError:
        return None
    if not eligible(model):
        return None
    lean = LeanModel(model, native)  # fuses layer by layer
    del model, layers, inner
    return lean


def _missing(name: str) -> Any:
    raise KeyError(name)


def _rope_frequencies(config: Any) -> tuple[torch.Tensor, float] | None:
    """``(inv_freq, attention_scaling)`` as transformers computes them for ``config``;
    None for length-dependent schemes (dynamic, longrope) the lean pass does not follow."""
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    kind = (
        params.get("rope_type", params.get("type", "default"))
        if isinstance(params, dict)
        else "default"
    )
    if kind in ("dynamic", "longrope"):
        return None
    if kind == "default":
        theta = float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
        heads = int(config.num_attention_heads)
        dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
        if float(params.get("partial_rotary_factor", 1.0)) != 1.0:
            return None
        inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        return inv, 1.0
    from transformers import PretrainedConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    init = ROPE_INIT_FUNCTIONS.get(str(kind))
    if init is None or not isinstance(config, PretrainedConfig):
        return None  # (a plain config.json: the transformers path computes these)
    inv, scaling = init(config, torch.device("cpu"))
    return inv.float(), float(scaling)


def build_lean(model: Any) -> LeanModel | None:
    """A :class:`LeanModel` for ``model`` when it qualifies (see the module doc), else None."""
    native = kernels()
    if native is None or not eligible(model):
        return None
    return LeanModel(model, native)


def eligible(model: Any) -> bool:
    """A plain Llama/Qwen2 decoder on the CPU with int8/int4 weights the kernels can take."""
    from companion.llm.quantize import Int4Linear, Int8Embedding, Int8Linear

    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in ARCHITECTURES:
        return False
    if getattr(config, "hidden_act", "silu") != "silu":
        return False
    if (
        getattr(config, "use_sliding_window", False)
        or (getattr(config, "pretraining_tp", 1) or 1) > 1
    ):
        return False
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
        return False
    scaling = getattr(config, "rope_scaling", None) or {}
    if isinstance(scaling, dict) and scaling.get("rope_type", "default") in ("dynamic", "longrope"):
        return False
    inner: Any = getattr(model, "model", None)
    try:
        linears = [model.lm_head] + [
            m
            for layer in inner.layers
            for m in (
                layer.self_attn.q_proj,
                layer.self_attn.k_proj,
                layer.self_attn.v_proj,
                layer.self_attn.o_proj,
                layer.mlp.gate_proj,
                layer.mlp.up_proj,
                layer.mlp.down_proj,
            )
        ]
        embed = inner.embed_tokens
        inner.rotary_emb.inv_freq  # noqa: B018  (present)
    except AttributeError:
        return False
    if not isinstance(embed, Int8Embedding) or any(
        not isinstance(m, Int8Linear | Int4Linear) for m in linears
    ):
        return False
    for group in _groups(inner.layers):  # fused matrices need one kind each
        if len({type(m) for m in group}) > 1:
            return False
    if any(m.in_features % BLOCK or m.qweight.device.type != "cpu" for m in linears):
        return False
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return int(inner.rotary_emb.inv_freq.numel()) * 2 == head_dim  # rotary over the whole head


def _groups(layers: Any) -> list[list[Any]]:
    return [
        group
        for layer in layers
        for group in (
            [layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj],
            [layer.mlp.gate_proj, layer.mlp.up_proj],
        )
    ]


def _vector(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().contiguous()
