"""The native kernels of the GGUF engine (``pool.c``, ``quants.c``, ``ops.c``), through ctypes.

The C sources are compiled once, on first use, with the host's compiler
(``$CC``, else ``cc``) and ``-O3 -march=native``, into the model cache
(``<models>/native/companion-gguf-<key>.so``, the key a hash of the sources, the
flags and the CPU), and loaded from there afterwards. Where ``-march=native`` is
refused the portable flags are tried; there the kernels run their plain-C path.

Every wrapper checks dtypes, shapes, contiguity and sizes here, before C sees a
pointer: a wrong argument raises ``ValueError``, and weights that do not match
their block type or size raise :class:`~companion.errors.ModelError` (one line).
Nothing is copied: the weights are read in place from the memory-mapped file.

The matmul's results for a token are the same bit for bit whether it comes alone
or with 500 others, and whatever the thread count (see quants.c).
"""

from __future__ import annotations

import ctypes
import platform
import subprocess
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from companion.errors import ModelError
from companion.llm.cbuild import compile_library

SOURCES = ("pool.c", "quants.c", "ops.c")
#: Compiler flags; part of the cache key. No fused multiply-adds the code did not ask for.
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fPIC", "-shared", "-pthread")
#: Flags for compilers or CPUs that refuse ``-march=native``: the plain-C path.
PORTABLE_FLAGS = ("-O3", "-ffp-contract=off", "-fPIC", "-shared", "-pthread")
#: AVX2 without VNNI (what older x86 CPUs get from ``-march=native``): for tests.
AVX2_FLAGS = ("-mavx2", "-mfma", "-mf16c", *PORTABLE_FLAGS)
#: The native flags with the 256-bit tile kernel (what AVX-VNNI CPUs run): for tests.
TILE8_FLAGS = (*FLAGS, "-DGK_TILE8")
#: What ``gk_abi()`` must return for a cached build to be used.
ABI = 1
#: Most threads a call may use.
MAX_THREADS = 64

_P = ctypes.c_void_p
_I = ctypes.c_int
_L = ctypes.c_int64
_F = ctypes.c_float

_F32 = np.dtype(np.float32)
_ERRORS = {
    -1: "unknown block type", -2: "bad shape", -3: "out of memory",
    -4: "more than 64 query heads per key/value head",
}


class Activations(NamedTuple):
    """A matrix of activations as a weight type's kernel sees it (for tests and checks).

    ``qs`` [T, cols] int8; ``d`` [T, blocks] float32 scales (blocks of 32, or 256 for
    the K-quants); ``s`` [T, cols/32] ``d * sum(qs)`` for Q4_1's Q8_1 (else empty);
    ``bsums`` [T, cols/16] int16 sums of 16 for the K-quants' Q8_K (else empty).
    """

    qs: np.ndarray
    d: np.ndarray
    s: np.ndarray
    bsums: np.ndarray

    def values(self) -> np.ndarray:
        """The float64 values the kernel multiplies the weights by: ``qs * d``."""
        t, cols = self.qs.shape
        block = cols // self.d.shape[1]
        scale = np.repeat(self.d.astype(np.float64), block, axis=1)
        return self.qs.astype(np.float64) * scale.reshape(t, cols)


class Kernels:
    """The loaded library: matmul over GGUF blocks, get_rows, and the layer's float ops."""

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        self.lib = lib
        self.path = path
        lib.gk_matmul.argtypes = [_I, _P, _L, _L, _P, _L, _P, _P, _I, _I]
        lib.gk_matmul.restype = _I
        lib.gk_get_rows.argtypes = [_I, _P, _L, _L, _P, _L, _P]
        lib.gk_get_rows.restype = _I
        lib.gk_quantize.argtypes = [_I, _P, _L, _L, _P, _P, _P, _P]
        lib.gk_quantize.restype = _I
        lib.gk_type_info.argtypes = [_I, ctypes.POINTER(_I), ctypes.POINTER(_I)]
        lib.gk_type_info.restype = _I
        lib.gk_rmsnorm.argtypes = [_P, _L, _L, _P, _F, _P]
        lib.gk_rmsnorm.restype = None
        lib.gk_rope.argtypes = [_P, _L, _P, _I, _I, _F, _I]
        lib.gk_rope.restype = None
        lib.gk_silu_mul.argtypes = [_P, _L, _P, _L, _L, _L, _P]
        lib.gk_silu_mul.restype = None
        lib.gk_attention.argtypes = [_P, _P, _P, _L, _L, _L, _I, _I, _I, _P, _I]
        lib.gk_attention.restype = _I
        lib.gk_pool_workers.restype = _I
        lib.gk_read.argtypes = [_P, _L, _I]
        lib.gk_read.restype = ctypes.c_uint64
        level = int(lib.gk_simd())
        #: Whether the AVX2 path was compiled in (else the plain-C one).
        self.simd = level > 0
        #: Which path: "plain C", "AVX2" or "AVX2+VNNI".
        self.isa = ("plain C", "AVX2", "AVX2+VNNI")[min(level, 2)]
        #: Tokens per tile of the prefill's Q5_0/Q8_0 tile kernels (16 with
        #: AVX-512, 8 with 256-bit VNNI); 0 where there are none.
        self.tile = int(lib.gk_tile())
        self._checked: dict[tuple[int, int, int, int], tuple[np.ndarray, int]] = {}
        self._types: dict[int, tuple[int, int]] = {}
        for qtype in range(64):
            block, size = _I(), _I()
            if lib.gk_type_info(qtype, ctypes.byref(block), ctypes.byref(size)):
                self._types[qtype] = (block.value, size.value)

    # -- block types -----------------------------------------------------------

    @property
    def types(self) -> frozenset[int]:
        """The block types (``gguf.GGMLQuantizationType`` values) the matmul reads."""
        return frozenset(self._types)

    def row_bytes(self, qtype: int, cols: int) -> int:
        """Bytes of one row of ``cols`` weights of type ``qtype``; ModelError if unsupported."""
        block, size = self._block(qtype)
        if cols <= 0 or cols % block:
            raise ModelError(
                f"rows of {cols} weights are not whole {_type_name(qtype)} blocks of {block}"
            )
        if block > 1 and cols % 32:
            raise ModelError(f"rows of {cols} weights are not whole blocks of 32 activations")
        return cols // block * size

    def _block(self, qtype: int) -> tuple[int, int]:
        found = self._types.get(qtype)
        if found is None:
            raise ModelError(f"block type {_type_name(qtype)} is not supported by the kernels")
        return found

    def _weights(self, qtype: int, w: Any, rows: int, cols: int) -> int:
        """The address of checked weights; each array is checked once (the checks are
        the slower part of a decode step's small calls)."""
        key = (id(w), qtype, rows, cols)
        found = self._checked.get(key)
        if found is not None and found[0] is w:
            return found[1]
        need = rows * self.row_bytes(qtype, cols)
        if not isinstance(w, np.ndarray) or w.dtype != np.uint8 or not w.flags.c_contiguous:
            raise ValueError("weights must be a C-contiguous uint8 numpy array of the blocks")
        if rows <= 0 or w.nbytes != need:
            raise ModelError(
                f"{rows}x{cols} {_type_name(qtype)} weights need {need} bytes, "
                f"the tensor has {w.nbytes}"
            )
        if len(self._checked) >= 4096:
            self._checked.clear()
        address = int(w.ctypes.data)
        self._checked[key] = (w, address)  # holds w: its id stays its own
        return address

    # -- matrix products -------------------------------------------------------

    def matmul(
        self,
        qtype: int,
        w: Any,
        rows: int,
        cols: int,
        x: np.ndarray,
        out: np.ndarray,
        *,
        bias: np.ndarray | None = None,
        accumulate: bool = False,
        threads: int = 1,
    ) -> None:
        """``out[T, rows] = x[T, cols] @ W.T (+ bias)``, added to ``out`` when ``accumulate``."""
        wp = self._weights(qtype, w, rows, cols)
        t = x.shape[0] if x.ndim == 2 else 0
        if not (
            x.dtype == _F32
            and out.dtype == _F32
            and x.flags.c_contiguous
            and out.flags.c_contiguous
            and x.shape == (t, cols)
            and out.shape == (t, rows)
        ):  # the fast test first; the slow one says what is wrong
            _f32(x, "x", (None, cols))
            _f32(out, "out", (x.shape[0], rows))
        if bias is not None:
            _f32(bias, "bias", (rows,))
        if self._types[qtype][0] == 1 and np.may_share_memory(x, out):
            raise ValueError("matmul: out must not overlap x")  # float weights read x late
        rc = self.lib.gk_matmul(
            qtype, wp, rows, cols, x.ctypes.data, t, out.ctypes.data,
            None if bias is None else bias.ctypes.data, int(accumulate), _threads(threads),
        )  # fmt: skip
        _check_rc(rc, "matmul")

    def get_rows(self, qtype: int, w: Any, rows: int, cols: int, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of W, dequantized: ``float32 [len(ids), cols]`` (token embeddings)."""
        wp = self._weights(qtype, w, rows, cols)
        if not isinstance(ids, np.ndarray) or ids.dtype != np.int32 or ids.ndim != 1:
            raise ValueError("get_rows: ids must be a 1-D int32 numpy array")
        ids = np.ascontiguousarray(ids)
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= rows):
            raise ValueError(f"get_rows: ids must lie in [0, {rows})")
        out = np.empty((len(ids), cols), dtype=np.float32)
        rc = self.lib.gk_get_rows(qtype, wp, rows, cols, ids.ctypes.data, len(ids), out.ctypes.data)
        _check_rc(rc, "get_rows")
        return out

    def quantize(self, qtype: int, x: np.ndarray) -> Activations:
        """``x [T, cols]`` in the activation format that weights of ``qtype`` pair with."""
        block, _ = self._block(qtype)
        if block == 1:
            raise ValueError(f"{_type_name(qtype)} weights take float activations")
        _f32(x, "x", (None, None))
        t, cols = x.shape
        group = 256 if block == 256 else 32
        if cols % group:
            raise ValueError(f"quantize: {cols} columns are not whole blocks of {group}")
        qs = np.empty((t, cols), dtype=np.int8)
        d = np.empty((t, cols // group), dtype=np.float32)
        s = np.empty((t, cols // 32 if qtype == 3 else 0), dtype=np.float32)
        bsums = np.empty((t, cols // 16 if block == 256 else 0), dtype=np.int16)
        rc = self.lib.gk_quantize(
            qtype, x.ctypes.data, t, cols, qs.ctypes.data, d.ctypes.data,
            s.ctypes.data, bsums.ctypes.data,
        )  # fmt: skip
        _check_rc(rc, "quantize")
        return Activations(qs, d, s, bsums)

    # -- the rest of a layer ---------------------------------------------------

    def rmsnorm(self, x: np.ndarray, weight: np.ndarray, eps: float, out: np.ndarray) -> None:
        """``out = x / sqrt(mean(x**2) + eps) * weight``, row by row (``out`` may be ``x``)."""
        _f32(x, "x", (None, None))
        t, n = x.shape
        _f32(weight, "weight", (n,))
        _f32(out, "out", (t, n))
        self.lib.gk_rmsnorm(x.ctypes.data, t, n, weight.ctypes.data, eps, out.ctypes.data)

    def rope(
        self, x: np.ndarray, positions: np.ndarray, heads: int, dim: int, theta: float, neox: bool
    ) -> None:
        """Rotate ``x [T, heads*dim]`` in place; NEOX pairs halves, else neighbours."""
        if dim <= 0 or dim % 2 or dim > 2048 or heads <= 0:
            raise ValueError(f"rope: head size {dim} must be even and at most 2048")
        _f32(x, "x", (None, heads * dim))
        t = x.shape[0]
        if positions.dtype != np.int32 or positions.shape != (t,):
            raise ValueError(f"rope: positions must be int32 of shape ({t},)")
        positions = np.ascontiguousarray(positions)
        self.lib.gk_rope(x.ctypes.data, t, positions.ctypes.data, heads, dim, theta, int(neox))

    def attention(
        self,
        q: np.ndarray,
        kcache: np.ndarray,
        vcache: np.ndarray,
        start: int,
        T: int,  # noqa: N803  (the shared kernel API's name)
        heads: int,
        kv_heads: int,
        dim: int,
        out: np.ndarray,
        threads: int = 1,
    ) -> None:
        """Causal attention of ``T`` queries at positions ``start..`` over the cache."""
        if kv_heads <= 0 or heads % kv_heads or dim <= 0:
            raise ValueError(f"attention: {heads} heads do not split over {kv_heads} KV heads")
        _f32(q, "q", (T, heads * dim))
        _f32(out, "out", (T, heads * dim))
        _f32(kcache, "kcache", (kv_heads, None, dim))
        _f32(vcache, "vcache", kcache.shape)
        capacity = kcache.shape[1]
        if T <= 0 or start < 0 or start + T > capacity:
            raise ValueError(f"attention: positions {start}..{start + T} exceed the cache")
        if np.may_share_memory(q, out):
            raise ValueError("attention: out must not overlap q")
        rc = self.lib.gk_attention(
            q.ctypes.data, kcache.ctypes.data, vcache.ctypes.data, capacity, start, T,
            heads, kv_heads, dim, out.ctypes.data, _threads(threads),
        )  # fmt: skip
        _check_rc(rc, "attention")

    def silu_mul(
        self, gate_up: np.ndarray, out: np.ndarray, *, up: np.ndarray | None = None
    ) -> None:
        """``out = silu(gate) * up``: gate and up side by side in ``gate_up [T, 2*ff]``,
        or, with ``up``, ``gate_up`` is the gate ``[T, ff]`` alone."""
        _f32(out, "out", (None, None))
        t, ff = out.shape
        if up is None:
            _f32(gate_up, "gate_up", (t, 2 * ff))
            gate, stride, up_ptr = gate_up.ctypes.data, 2 * ff, gate_up.ctypes.data + 4 * ff
            ustride = 2 * ff
        else:
            _f32(gate_up, "gate", (t, ff))
            _f32(up, "up", (t, ff))
            gate, stride, up_ptr, ustride = gate_up.ctypes.data, ff, up.ctypes.data, ff
        self.lib.gk_silu_mul(gate, stride, up_ptr, ustride, t, ff, out.ctypes.data)

    def read(self, data: np.ndarray, threads: int = 1) -> int:
        """Read every byte of ``data`` once (a memory-bandwidth yardstick); a checksum."""
        if not data.flags.c_contiguous:
            raise ValueError("read: data must be C-contiguous")
        return int(self.lib.gk_read(data.ctypes.data, data.nbytes, _threads(threads)))

    def pool_workers(self) -> int:
        """Worker threads started so far (they sleep between calls)."""
        return int(self.lib.gk_pool_workers())


def _f32(a: Any, name: str, shape: tuple[int | None, ...]) -> None:
    if (
        not isinstance(a, np.ndarray)
        or a.dtype != np.float32
        or not a.flags.c_contiguous
        or a.ndim != len(shape)
        or any(want is not None and got != want for got, want in zip(a.shape, shape, strict=True))
    ):
        described = (
            f"{a.dtype} {a.shape} (contiguous={a.flags.c_contiguous})"
            if isinstance(a, np.ndarray)
            else type(a).__name__
        )
        want = "x".join("*" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} must be a C-contiguous float32 array [{want}], got {described}")


def _threads(threads: int) -> int:
    return max(1, min(MAX_THREADS, int(threads)))


def _check_rc(rc: int, what: str) -> None:
    if rc == -3:
        raise MemoryError(f"{what}: the kernels could not allocate their scratch memory")
    if rc != 0:
        raise ModelError(f"{what}: {_ERRORS.get(rc, f'error {rc}')}")


def _type_name(qtype: int) -> str:
    try:
        from gguf import GGMLQuantizationType

        return f"{GGMLQuantizationType(qtype).name} ({qtype})"
    except (ImportError, ValueError):
        return f"type {qtype}"


# -- building and loading ----------------------------------------------------------


@cache
def load_kernels() -> Kernels:
    """The kernels, built on first use; ModelError (one line) when they cannot be."""
    try:
        path = build()
    except (OSError, subprocess.SubprocessError) as exc:
        raise ModelError(f"cannot build the GGUF kernels: {_reason(exc)}") from exc
    return open_kernels(path)


def open_kernels(path: Path) -> Kernels:
    """Load a built library (``build``'s result)."""
    try:
        lib = ctypes.CDLL(str(path))
        if lib.gk_abi() != ABI:
            raise ModelError(f"{path}: built for another version of the kernels; delete it")
        return Kernels(lib, path)
    except (OSError, AttributeError) as exc:
        raise ModelError(f"{path}: cannot load the GGUF kernels ({exc})") from exc


def build(cache_dir: Path | None = None, flags: tuple[str, ...] | None = None) -> Path:
    """Compile the sources into the cache (once per sources, flags and CPU); return the path.

    With ``flags`` None, ``FLAGS`` is tried and then ``PORTABLE_FLAGS``.
    """
    if flags is None:
        try:
            return build(cache_dir, FLAGS)
        except subprocess.CalledProcessError:
            return build(cache_dir, PORTABLE_FLAGS)
    package = files("companion.llm.gguf")
    sources = {name: package.joinpath(name).read_bytes() for name in SOURCES}
    return compile_library(sources, flags, cache_dir or _default_dir(), "companion-gguf",
                           depends=_cpu_signature())


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU model and its feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    keep = [line for line in text.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(keep[:2]) or platform.machine()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        lines = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        return lines[0] if lines else str(exc)
    return str(exc)


def _default_dir() -> Path:
    from companion.paths import models_dir

    return models_dir() / "native"
