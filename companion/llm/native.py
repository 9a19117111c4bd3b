"""The native kernels of ``native.c``: built on first use, called through ctypes.

On an x86-64 CPU with AVX2, FMA and F16C and a C compiler (``$CC``, else ``cc``), the
kernels are compiled once into the cache (``<models>/native/``, keyed by the
source and the flags) and loaded; everywhere else :func:`kernels` returns None
and callers keep the pure-torch path. ``COMPANION_NATIVE=0`` turns them off
(for comparison, or when a build misbehaves).

Every wrapper takes contiguous float32 CPU tensors (int8 for weights) and is
checked here, not in C: a wrong shape raises ``ValueError`` rather than reading
past a buffer.
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from companion.llm.cbuild import compile_library

#: Compiler flags; part of the cache key.
CFLAGS = ("-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp", "-shared", "-fPIC")
#: What ``companion_native_abi()`` must return for a cached build to be used.
ABI = 3
#: Activations are quantized in blocks of this many inputs; K must be a multiple.
BLOCK = 32

_P = ctypes.c_void_p
_I = ctypes.c_int
_F = ctypes.c_float


class Kernels:
    """The loaded library with typed entry points."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.companion_int8_linear.argtypes = [_P, _I, _I, _P, _P, _P, _I, _P, _I, _I]
        lib.companion_int8_linear.restype = _I
        lib.companion_rmsnorm.argtypes = [_P, _I, _I, _P, _F, _P]
        lib.companion_rmsnorm.restype = None
        lib.companion_rope.argtypes = [_P, _I, _I, _I, _I, _P, _P]
        lib.companion_rope.restype = None
        lib.companion_silu_mul.argtypes = [_P, _I, _I, _P]
        lib.companion_silu_mul.restype = None
        lib.companion_attend.argtypes = [_P, _I, _I, _P, _P, _I, _I, _I, _I, _I, _F, _P, _I, _I]
        lib.companion_attend.restype = _I
        lib.companion_q4_linear.argtypes = [_P, _I, _I, _P, _P, _P, _P, _I, _P, _I, _I]
        lib.companion_q4_linear.restype = _I

    def int8_linear(
        self,
        x: Any,
        qweight: Any,
        scales: Any,
        bias: Any | None,
        threads: int,
        out: Any | None = None,
    ) -> Any:
        """``x [M, K] @ (qweight * scales[:, None]).T + bias``; added into ``out`` when given."""
        import torch

        m, k = x.shape
        n = qweight.shape[0]
        _check(x, torch.float32, (m, k))
        _check(qweight, torch.int8, (n, k))
        _check(scales, torch.float32, (n,))
        if bias is not None:
            _check(bias, torch.float32, (n,))
        if k % BLOCK:
            raise ValueError(f"int8_linear needs inputs in multiples of {BLOCK}, not {k}")
        accumulate = out is not None
        if out is None:
            out = torch.empty((m, n), dtype=torch.float32)
        else:
            _check(out, torch.float32, (m, n))
        rc = self.lib.companion_int8_linear(
            x.data_ptr(),
            m,
            k,
            qweight.data_ptr(),
            scales.data_ptr(),
            None if bias is None else bias.data_ptr(),
            n,
            out.data_ptr(),
            int(accumulate),
            max(1, threads),
        )
        if rc != 0:
            raise MemoryError("int8_linear could not allocate its scratch space")
        return out

    def q4_linear(self, x: Any, layer: Any, bias: Any | None, threads: int) -> Any:
        """``x [M, K] @ W.T + bias`` for the weights of an ``Int4Linear`` (quantize.py)."""
        import torch

        m, k = x.shape
        n = layer.qweight.shape[0]
        _check(x, torch.float32, (m, k))
        _check(layer.qweight, torch.uint8, (n, k // 2))
        _check(layer.scales, torch.float16, (n, k // BLOCK))
        _check(layer.mins, torch.float16, (n, k // BLOCK))
        if bias is not None:
            _check(bias, torch.float32, (n,))
        if k % BLOCK:
            raise ValueError(f"q4_linear needs inputs in multiples of {BLOCK}, not {k}")
        out = torch.empty((m, n), dtype=torch.float32)
        rc = self.lib.companion_q4_linear(
            x.data_ptr(),
            m,
            k,
            layer.qweight.data_ptr(),
            layer.scales.data_ptr(),
            layer.mins.data_ptr(),
            None if bias is None else bias.data_ptr(),
            n,
            out.data_ptr(),
            0,
            max(1, threads),
        )
        if rc != 0:
            raise MemoryError("q4_linear could not allocate its scratch space")
        return out

    def rmsnorm(self, x: Any, weight: Any, eps: float) -> Any:
        import torch

        m, k = x.shape
        _check(x, torch.float32, (m, k))
        _check(weight, torch.float32, (k,))
        out = torch.empty_like(x)
        self.lib.companion_rmsnorm(x.data_ptr(), m, k, weight.data_ptr(), eps, out.data_ptr())
        return out

    def rope_(self, x: Any, heads: int, dim: int, cos: Any, sin: Any) -> None:
        """Rotate the first ``heads`` heads of each row of ``x [M, >= heads*dim]`` in place."""
        import torch

        m, stride = x.shape
        if heads * dim > stride or dim % 2:
            raise ValueError("rope: heads do not fit the rows")
        _check(x, torch.float32, (m, stride))
        _check(cos, torch.float32, (m, dim // 2))
        _check(sin, torch.float32, (m, dim // 2))
        self.lib.companion_rope(x.data_ptr(), m, stride, heads, dim, cos.data_ptr(), sin.data_ptr())

    def silu_mul(self, gate_up: Any) -> Any:
        import torch

        m, two_i = gate_up.shape
        _check(gate_up, torch.float32, (m, two_i))
        out = torch.empty((m, two_i // 2), dtype=torch.float32)
        self.lib.companion_silu_mul(gate_up.data_ptr(), m, two_i // 2, out.data_ptr())
        return out


def _check(t: Any, dtype: Any, shape: tuple[int, ...]) -> None:
    if (
        t.dtype != dtype
        or tuple(t.shape) != shape
        or not t.is_contiguous()
        or t.device.type != "cpu"
    ):
        raise ValueError(
            f"expected a contiguous CPU {dtype} tensor of shape {shape}, got "
            f"{t.dtype} {tuple(t.shape)} (contiguous={t.is_contiguous()}, {t.device})"
        )


@cache
def kernels() -> Kernels | None:
    """The native kernels, built if needed; None where they cannot run (see module doc)."""
    if os.environ.get("COMPANION_NATIVE", "1") == "0" or not cpu_supported():
        return None
    import torch  # noqa: F401  (its libgomp must be loaded first, so that ours is the same)

    try:
        path = build()
        lib = ctypes.CDLL(str(path))
        if lib.companion_native_abi() != ABI:
            return None
        return Kernels(lib)
    except (OSError, subprocess.SubprocessError, AttributeError):
        return None


def describe() -> tuple[bool, str]:
    """Whether the kernels run here, and one line saying so or why not (``companion doctor``)."""
    slower = "the slower torch kernels run instead"
    if os.environ.get("COMPANION_NATIVE", "1") == "0":
        return False, f"off (COMPANION_NATIVE=0): {slower}"
    if not cpu_supported():
        return False, f"need an x86-64 Linux CPU with AVX2, FMA and F16C: {slower}"
    try:
        path = build()
    except subprocess.CalledProcessError as exc:
        reason = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        return False, f"the build failed ({reason[0] if reason else exc}): {slower}"
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"cannot build them ({exc}): {slower}"
    if kernels() is None:
        return False, f"{path} does not load: {slower}"
    return True, f"AVX2 kernels built at {path}"


def cpu_supported() -> bool:
    """An x86-64 Linux CPU that reports AVX2, FMA and F16C."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not sys.platform.startswith(
        "linux"
    ):
        return False
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    return all(flag in flags for flag in ("avx2", "fma", "f16c"))


def build(cache_dir: Path | None = None) -> Path:
    """Compile ``native.c`` into the cache (once per source and flags); return the library."""
    source = files("companion.llm").joinpath("native.c").read_bytes()
    return compile_library({"native.c": source}, CFLAGS, cache_dir or _default_dir(),
                           "companion-native", timeout=120)


def _default_dir() -> Path:
    from companion.paths import models_dir

    return models_dir() / "native"
