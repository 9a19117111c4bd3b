"""The forward pass of a GGUF model (Qwen2 and Llama architectures), on the file's own blocks.

:class:`GGUFModel` runs the transformer straight from the memory-mapped tensors
of a :class:`~companion.llm.gguf.reader.GGUFFile`: every matrix product goes to
the native kernels (:mod:`companion.llm.gguf.kernels`) with the blocks as they
are in the file, activations quantized as llama.cpp does, so no float copy of
a weight is ever made. The shape comes from the metadata; Qwen2 adds biases to
q, k and v and rotates with NEOX-style rope (halves), Llama rotates interleaved
pairs (llama.cpp's converter permuted its q/k weights for that); the output
matrix is the token embedding when the file has no ``output.weight``.

The key/value cache (:class:`KVCache`) is float32 holding float16-rounded
values (llama.cpp's default cache type, so that both engines compute the same
attention), grown as the conversation grows, and prefix-cacheable:
:meth:`GGUFModel.forward` appends to it, and :meth:`KVCache.crop` forgets the
positions past a point. Every token's numbers
are the same whether it is read in a prompt of 500 tokens or fed alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from companion.errors import ModelError
from companion.llm.gguf.reader import GGUFFile, Hyperparameters, Tensor

F32 = np.ndarray[Any, np.dtype[np.float32]]
I32 = np.ndarray[Any, np.dtype[np.int32]]
#: Longest piece of a prompt run at once: bounds the activations' memory.
PREFILL_CHUNK = 256
#: Positions the key/value cache holds at first; it doubles as needed.
INITIAL_CAPACITY = 256


class Ops(Protocol):
    """The kernels the forward pass calls (see :mod:`companion.llm.gguf.kernels`)."""

    def matmul(
        self, qtype: int, w: Any, rows: int, cols: int, x: F32, out: F32, *,
        bias: F32 | None = None, accumulate: bool = False, threads: int,
    ) -> None: ...  # fmt: skip

    def get_rows(self, qtype: int, w: Any, rows: int, cols: int, ids: I32) -> F32: ...

    def rmsnorm(self, x: F32, weight: F32, eps: float, out: F32) -> None: ...

    def rope(
        self, x: F32, positions: I32, heads: int, dim: int, theta: float, neox: bool
    ) -> None: ...

    def attention(
        self, q: F32, kcache: F32, vcache: F32, start: int, T: int, heads: int,
        kv_heads: int, dim: int, out: F32, threads: int,
    ) -> None: ...  # fmt: skip

    def silu_mul(self, gate_up: F32, out: F32) -> None: ...


@dataclass
class KVCache:
    """Keys and values of the positions run so far, per layer ``(kv_heads, capacity, dim)``."""

    layers: int
    kv_heads: int
    dim: int
    limit: int
    length: int = 0
    keys: list[F32] = field(default_factory=list)
    values: list[F32] = field(default_factory=list)

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[1] if self.keys else 0

    def reserve(self, n: int) -> None:
        """Room for ``n`` positions (kept ones copied over when it grows)."""
        if n <= self.capacity:
            return
        if n > self.limit:
            raise ModelError(f"{n} positions do not fit the context of {self.limit}")
        size = max(INITIAL_CAPACITY, self.capacity)
        while size < n:
            size *= 2
        size = min(size, self.limit)
        shape = (self.kv_heads, size, self.dim)
        for store in (self.keys, self.values):
            for i in range(self.layers):
                grown = np.zeros(shape, dtype=np.float32)
                if i < len(store):
                    grown[:, : self.length] = store[i][:, : self.length]
                    store[i] = grown
                else:
                    store.append(grown)

    def crop(self, n: int) -> None:
        """Forget every position from ``n`` on."""
        self.length = max(0, min(n, self.length))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (*self.keys, *self.values))


@dataclass(frozen=True, slots=True)
class _Layer:
    attn_norm: F32
    ffn_norm: F32
    q: Tensor
    k: Tensor
    v: Tensor
    o: Tensor
    q_bias: F32 | None
    k_bias: F32 | None
    v_bias: F32 | None
    #: gate and up as one (2 * ff, width) matrix when they lie side by side in the file.
    gate_up: Tensor | None
    gate: Tensor
    up: Tensor
    down: Tensor


class GGUFModel:
    """A GGUF model's network, run by ``ops`` on ``threads`` threads."""

    def __init__(self, gguf: GGUFFile, ops: Ops, *, threads: int = 1) -> None:
        self.gguf = gguf
        self.ops = ops
        self.threads = max(1, threads)
        hp = self.hparams = gguf.hparams
        self.neox = hp.architecture != "llama"
        self.embedding = gguf.tensor("token_embd.weight")
        self.output = gguf.tensors.get("output.weight", self.embedding)
        self.norm = gguf.tensor("output_norm.weight").floats()
        self.vocab_size = self.output.rows
        self.layers = [_layer(gguf, i, hp) for i in range(hp.block_count)]
        _check_shapes(self, gguf.path)

    @classmethod
    def open(cls, path: str | Path, *, threads: int = 1, ops: Ops | None = None) -> GGUFModel:
        """Map ``path`` and check it can run; ``ops`` defaults to the native kernels."""
        gguf = GGUFFile.open(path)
        return cls(gguf, ops or native_ops(), threads=threads)

    def new_cache(self, limit: int | None = None) -> KVCache:
        hp = self.hparams
        return KVCache(
            layers=hp.block_count,
            kv_heads=hp.head_count_kv,
            dim=hp.head_dim,
            limit=min(limit or hp.context_length, hp.context_length),
        )

    def shift(self, cache: KVCache, keep: int, cut_end: int, length: int) -> None:
        """Evict positions ``[keep, cut_end)`` and move ``[cut_end, cut_end + length)``
        back to start at ``keep``, keys rotated by the distance (the conversation
        window moved on: :mod:`companion.llm.kvshift`); later positions are dropped."""
        if not 0 <= keep < cut_end or cut_end + length > cache.length or length <= 0:
            raise ModelError(f"cannot shift positions [{cut_end}, {cut_end + length}) to {keep}")
        kv, dim = cache.kv_heads, cache.dim
        back = np.full(length, keep - cut_end, dtype=np.int32)
        for keys, values in zip(cache.keys, cache.values, strict=True):
            for h in range(kv):
                moved = np.ascontiguousarray(keys[h, cut_end : cut_end + length])
                self.ops.rope(moved, back, 1, dim, self.hparams.rope_freq_base, self.neox)
                keys[h, keep : keep + length] = moved.astype(np.float16)
            values[:, keep : keep + length] = values[:, cut_end : cut_end + length].copy()
        cache.length = keep + length

    def forward(self, ids: list[int] | I32, cache: KVCache, *, every: bool = False) -> F32:
        """Run ``ids`` after the cached positions; the last position's logits
        ``(vocab,)``, or every position's ``(len(ids), vocab)`` with ``every``."""
        tokens = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
        if tokens.size == 0:
            raise ModelError("forward needs at least one token")
        if tokens.min() < 0 or tokens.max() >= self.embedding.rows:
            raise ModelError(f"a token id is outside the vocabulary of {self.embedding.rows}")
        cache.reserve(cache.length + tokens.size)
        pieces: list[F32] = []
        for at in range(0, tokens.size, PREFILL_CHUNK):
            chunk = tokens[at : at + PREFILL_CHUNK]
            last = at + PREFILL_CHUNK >= tokens.size
            hidden = self._run(chunk, cache)
            if every:
                pieces.append(self._logits(hidden))
            elif last:
                last_logits: F32 = self._logits(hidden[-1:])[0]
                return last_logits
        joined: F32 = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        return joined

    def _run(self, tokens: I32, cache: KVCache) -> F32:
        """The final hidden states of ``tokens`` (normed), appending their keys and values."""
        ops, hp, th = self.ops, self.hparams, self.threads
        n, start = int(tokens.size), cache.length
        heads, kv, dim = hp.head_count, hp.head_count_kv, hp.head_dim
        emb = self.embedding
        x = ops.get_rows(emb.qtype, emb.data, emb.rows, emb.cols, tokens)
        h = np.empty_like(x)
        q = np.empty((n, heads * dim), dtype=np.float32)
        k = np.empty((n, kv * dim), dtype=np.float32)
        v = np.empty((n, kv * dim), dtype=np.float32)
        att = np.empty((n, heads * dim), dtype=np.float32)
        ff = hp.feed_forward_length
        gate_up = np.empty((n, 2 * ff), dtype=np.float32)
        act = np.empty((n, ff), dtype=np.float32)
        positions = np.arange(start, start + n, dtype=np.int32)
        for i, layer in enumerate(self.layers):
            ops.rmsnorm(x, layer.attn_norm, hp.rms_eps, h)
            _mm(ops, layer.q, h, q, th, bias=layer.q_bias)
            _mm(ops, layer.k, h, k, th, bias=layer.k_bias)
            _mm(ops, layer.v, h, v, th, bias=layer.v_bias)
            ops.rope(q, positions, heads, dim, hp.rope_freq_base, self.neox)
            ops.rope(k, positions, kv, dim, hp.rope_freq_base, self.neox)
            # llama.cpp keeps keys and values in float16 and rounds q to float16
            # for q.k: so do we (the cache stays float32 for the kernels).
            keys, values = cache.keys[i], cache.values[i]
            keys[:, start : start + n] = k.astype(np.float16).reshape(n, kv, dim).transpose(1, 0, 2)
            values[:, start : start + n] = (
                v.astype(np.float16).reshape(n, kv, dim).transpose(1, 0, 2)
            )
            q[...] = q.astype(np.float16)
            ops.attention(q, keys, values, start, n, heads, kv, dim, att, th)
            _mm(ops, layer.o, att, x, th, accumulate=True)
            ops.rmsnorm(x, layer.ffn_norm, hp.rms_eps, h)
            if layer.gate_up is not None:
                _mm(ops, layer.gate_up, h, gate_up, th)
            else:
                gate = np.empty((n, ff), dtype=np.float32)
                up = np.empty((n, ff), dtype=np.float32)
                _mm(ops, layer.gate, h, gate, th)
                _mm(ops, layer.up, h, up, th)
                gate_up[:, :ff], gate_up[:, ff:] = gate, up
            ops.silu_mul(gate_up, act)
            _mm(ops, layer.down, act, x, th, accumulate=True)
        cache.length = start + n
        ops.rmsnorm(x, self.norm, hp.rms_eps, h)
        return h

    def _logits(self, hidden: F32) -> F32:
        out = np.empty((hidden.shape[0], self.vocab_size), dtype=np.float32)
        _mm(self.ops, self.output, np.ascontiguousarray(hidden), out, self.threads)
        return out


def native_ops() -> Ops:
    """The native kernels, built on first use; :class:`ModelError` when they cannot be."""
    try:
        from companion.llm.gguf.kernels import load_kernels
    except ImportError as exc:
        raise ModelError(f"the GGUF kernels are not installed ({exc})") from exc
    ops: Ops = load_kernels()
    return ops


def _mm(
    ops: Ops, w: Tensor, x: F32, out: F32, threads: int, *,
    bias: F32 | None = None, accumulate: bool = False,
) -> None:  # fmt: skip
    ops.matmul(
        w.qtype, w.data, w.rows, w.cols, x, out,
        bias=bias, accumulate=accumulate, threads=threads,
    )  # fmt: skip


def _layer(gguf: GGUFFile, i: int, hp: Hyperparameters) -> _Layer:
    def t(name: str) -> Tensor:
        return gguf.tensor(f"blk.{i}.{name}")

    def bias(name: str) -> F32 | None:
        found = gguf.tensors.get(f"blk.{i}.{name}.bias")
        return None if found is None else found.floats()

    gate, up = t("ffn_gate.weight"), t("ffn_up.weight")
    return _Layer(
        attn_norm=t("attn_norm.weight").floats(),
        ffn_norm=t("ffn_norm.weight").floats(),
        q=t("attn_q.weight"),
        k=t("attn_k.weight"),
        v=t("attn_v.weight"),
        o=t("attn_output.weight"),
        q_bias=bias("attn_q"),
        k_bias=bias("attn_k"),
        v_bias=bias("attn_v"),
        gate_up=_side_by_side(gate, up),
        gate=gate,
        up=up,
        down=t("ffn_down.weight"),
    )


def _side_by_side(a: Tensor, b: Tensor) -> Tensor | None:
    """``a`` and ``b`` as one matrix when they are adjacent in the file with one layout."""
    if a.qtype != b.qtype or a.cols != b.cols or a.offset + a.data.nbytes != b.offset:
        return None
    whole = np.lib.stride_tricks.as_strided(
        a.data, shape=(a.rows + b.rows, a.data.shape[1]), strides=a.data.strides, writeable=False
    )
    return Tensor(
        name=f"{a.name}+{b.name}", qtype=a.qtype, rows=a.rows + b.rows, cols=a.cols,
        data=whole, offset=a.offset,
    )  # fmt: skip


def _check_shapes(model: GGUFModel, path: Path) -> None:
    """Every matrix has the shape the metadata implies (a wrong file fails here, not in C)."""
    hp = model.hparams
    width, ff, dim = hp.embedding_length, hp.feed_forward_length, hp.head_dim
    want: list[tuple[Tensor | F32 | None, tuple[int, int] | int]] = [
        (model.embedding, (model.embedding.rows, width)),
        (model.output, (model.vocab_size, width)),
        (model.norm, width),
    ]
    for layer in model.layers:
        want += [
            (layer.attn_norm, width), (layer.ffn_norm, width),
            (layer.q, (hp.head_count * dim, width)), (layer.k, (hp.head_count_kv * dim, width)),
            (layer.v, (hp.head_count_kv * dim, width)), (layer.o, (width, hp.head_count * dim)),
            (layer.q_bias, hp.head_count * dim), (layer.k_bias, hp.head_count_kv * dim),
            (layer.v_bias, hp.head_count_kv * dim),
            (layer.gate, (ff, width)), (layer.up, (ff, width)), (layer.down, (width, ff)),
        ]  # fmt: skip
    for found, shape in want:
        if found is None:
            continue
        if isinstance(found, Tensor):
            got: tuple[int, int] | int = (found.rows, found.cols)
            name = found.name
        else:
            got, name = int(found.size), "a norm or bias vector"
        if got != shape:
            raise ModelError(f"{path}: {name} has shape {got}, expected {shape}")
