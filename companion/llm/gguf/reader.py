"""A GGUF file's header, metadata and tensor table, with the tensors mapped in place.

:meth:`GGUFFile.open` parses the header itself (``struct`` over a memory map):
``gguf.GGUFReader`` builds a numpy view for every token string and merge, which
cost 0.5 GB and seconds for Qwen2.5's vocabulary; here the header of a 1 GB
file reads in a fraction of a second and nothing of the tensor data is touched
until the forward pass reads it. Each tensor is a read-only ``uint8`` view of
the file, one row of blocks per matrix row, exactly as ggml lays it out.

Everything the engine cannot run is refused here, with one line naming the file
and the problem (:class:`~companion.errors.ModelError`): a file that is not
GGUF, truncated or corrupt, an unknown or unsupported block type, an
architecture other than the ones :data:`ARCHITECTURES` lists.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import ModelError

#: Architectures the forward pass knows (``general.architecture``).
ARCHITECTURES = ("llama", "qwen2")
#: Block types (ggml type id -> name) the kernels run.
SUPPORTED_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 8: "Q8_0",
    12: "Q4_K", 13: "Q5_K", 14: "Q6_K",
}  # fmt: skip
#: Every ggml type id this reader can size: (values per block, bytes per block).
BLOCK_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98),
    19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136),
    24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
}  # fmt: skip

_MAGIC = b"GGUF"
_ALIGNMENT = 32
# GGUF metadata value types -> struct format of a scalar.
_SCALARS = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9
#: Sanity limits: a corrupt count must not make the parser allocate or loop for ever.
_MAX_COUNT = 1 << 24


@dataclass(frozen=True, slots=True)
class Tensor:
    """One tensor: ``rows`` x ``cols`` values (a vector has one row) in ``qtype`` blocks."""

    name: str
    qtype: int
    rows: int
    cols: int
    #: The raw blocks, ``(rows, bytes per row)`` uint8, read-only, mapped from the file.
    data: np.ndarray[Any, np.dtype[np.uint8]]
    #: Offset of the first byte in the file (adjacent tensors can be run as one).
    offset: int

    @property
    def type_name(self) -> str:
        return SUPPORTED_TYPES.get(self.qtype, str(self.qtype))

    def floats(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        """An F32 or F16 tensor as float32 (norm weights and biases: small)."""
        if self.qtype == 0:
            return self.data.view(np.float32).reshape(-1)
        if self.qtype == 1:
            return self.data.view(np.float16).reshape(-1).astype(np.float32)
        raise ModelError(f"{self.name} is {self.type_name}, not a float tensor")


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    """The shape of the network, from ``<arch>.*`` metadata."""

    architecture: str
    block_count: int
    embedding_length: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    head_dim: int
    rope_freq_base: float
    rms_eps: float
    context_length: int


@dataclass(eq=False)
class GGUFFile:
    """A parsed GGUF file: metadata, hyperparameters and mapped tensors."""

    path: Path
    metadata: dict[str, Any]
    tensors: dict[str, Tensor]
    hparams: Hyperparameters
    size: int

    @classmethod
    def open(cls, path: str | Path) -> GGUFFile:
        """Parse and validate ``path``; see the module docstring for what is refused."""
        path = Path(path)
        try:
            with path.open("rb") as fh:
                size = path.stat().st_size
                if size < 24:
                    raise ModelError(f"{path}: not a GGUF file (only {size} bytes)")
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    view = memoryview(mm)
                    try:
                        metadata, infos, data_start = _parse_header(view, path)
                    finally:
                        view.release()
        except OSError as exc:
            raise ModelError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
        hparams = _hyperparameters(metadata, path)
        blob = np.memmap(path, dtype=np.uint8, mode="r")
        tensors: dict[str, Tensor] = {}
        for name, dims, qtype, offset in infos:
            tensors[name] = _tensor(blob, path, name, dims, qtype, data_start + offset)
        return cls(path=path, metadata=metadata, tensors=tensors, hparams=hparams, size=size)

    def tensor(self, name: str) -> Tensor:
        found = self.tensors.get(name)
        if found is None:
            raise ModelError(f"{self.path}: tensor {name} is missing")
        return found


def _parse_header(
    buf: memoryview, path: Path
) -> tuple[dict[str, Any], list[tuple[str, list[int], int, int]], int]:
    """(metadata, [(name, dims, type, offset)], offset of the tensor data)."""
    if bytes(buf[:4]) != _MAGIC:
        raise ModelError(f"{path}: not a GGUF file (bad magic)")
    try:
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version not in (2, 3):
            raise ModelError(f"{path}: GGUF version {version} is not supported")
        if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
            raise ModelError(f"{path}: corrupt header (counts {n_tensors}, {n_kv})")
        pos = 24
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key, pos = _string(buf, pos)
            (vtype,), pos = struct.unpack_from("<I", buf, pos), pos + 4
            metadata[key], pos = _value(buf, pos, vtype)
        infos: list[tuple[str, list[int], int, int]] = []
        for _ in range(n_tensors):
            name, pos = _string(buf, pos)
            (n_dims,), pos = struct.unpack_from("<I", buf, pos), pos + 4
            if not 1 <= n_dims <= 4:
                raise ModelError(f"{path}: corrupt tensor table ({name} has {n_dims} dimensions)")
            dims = list(struct.unpack_from(f"<{n_dims}Q", buf, pos))
            pos += 8 * n_dims
            qtype, offset = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            infos.append((name, dims, qtype, offset))
    except (struct.error, UnicodeDecodeError, IndexError, ValueError) as exc:
        raise ModelError(f"{path}: truncated or corrupt GGUF header ({exc})") from exc
    align = metadata.get("general.alignment", _ALIGNMENT)
    if not isinstance(align, int) or align <= 0:
        raise ModelError(f"{path}: corrupt general.alignment {align!r}")
    return metadata, infos, (pos + align - 1) // align * align


def _string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", buf, pos)
    end = pos + 8 + n
    if end > len(buf):
        raise ValueError(f"a string of {n} bytes runs past the end at {pos}")
    return str(buf[pos + 8 : end], "utf-8"), end


def _value(buf: memoryview, pos: int, vtype: int) -> tuple[Any, int]:
    fmt = _SCALARS.get(vtype)
    if fmt is not None:
        return struct.unpack_from("<" + fmt, buf, pos)[0], pos + struct.calcsize(fmt)
    if vtype == _STRING:
        return _string(buf, pos)
    if vtype != _ARRAY:
        raise ValueError(f"unknown metadata value type {vtype}")
    sub, n = struct.unpack_from("<IQ", buf, pos)
    pos += 12
    if n > _MAX_COUNT:
        raise ValueError(f"an array of {n} values")
    fmt = _SCALARS.get(sub)
    if fmt is not None:
        width = struct.calcsize(fmt)
        if pos + n * width > len(buf):
            raise ValueError(f"an array of {n} values runs past the end")
        values = np.frombuffer(buf, dtype=np.dtype("<" + fmt), count=n, offset=pos)
        return values.tolist(), pos + n * width
    if sub == _STRING:
        out: list[str] = []
        for _ in range(n):
            text, pos = _string(buf, pos)
            out.append(text)
        return out, pos
    items: list[Any] = []
    for _ in range(n):
        item, pos = _value(buf, pos, sub)
        items.append(item)
    return items, pos


def _tensor(
    blob: np.memmap[Any, np.dtype[np.uint8]],
    path: Path,
    name: str,
    dims: list[int],
    qtype: int,
    start: int,
) -> Tensor:
    if qtype not in BLOCK_SIZES:
        raise ModelError(f"{path}: tensor {name} has an unknown block type {qtype}")
    if qtype not in SUPPORTED_TYPES:
        raise ModelError(
            f"{path}: tensor {name} uses block type {qtype}, which the GGUF engine does not run"
        )
    per_block, block_bytes = BLOCK_SIZES[qtype]
    cols = dims[0]
    rows = 1
    for d in dims[1:]:
        rows *= d
    if cols % per_block:
        raise ModelError(f"{path}: tensor {name} has {cols} columns, not whole blocks")
    row_bytes = cols // per_block * block_bytes
    end = start + rows * row_bytes
    if end > len(blob):
        raise ModelError(f"{path}: truncated: tensor {name} ends past the end of the file")
    data = blob[start:end].view(np.ndarray).reshape(rows, row_bytes)
    return Tensor(name=name, qtype=qtype, rows=rows, cols=cols, data=data, offset=start)


def _hyperparameters(meta: dict[str, Any], path: Path) -> Hyperparameters:
    arch = meta.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise ModelError(
            f"{path}: architecture {arch!r} is not supported by the GGUF engine "
            f"(it runs {', '.join(ARCHITECTURES)})"
        )
    scaling = meta.get(f"{arch}.rope.scaling.type")
    if scaling not in (None, "none"):
        raise ModelError(f"{path}: rope scaling {scaling!r} is not supported by the GGUF engine")

    def get(key: str, kind: type, default: Any = None) -> Any:
        value = meta.get(f"{arch}.{key}", default)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModelError(f"{path}: metadata {arch}.{key} is missing or not a number")
        if value <= 0:
            raise ModelError(f"{path}: metadata {arch}.{key} is {value}")
        return kind(value)

    width = get("embedding_length", int)
    heads = get("attention.head_count", int)
    head_dim = get("rope.dimension_count", int, width // heads)
    if head_dim * heads != width or head_dim % 2:
        raise ModelError(f"{path}: {heads} heads of {head_dim} do not make a width of {width}")
    kv_heads = get("attention.head_count_kv", int, heads)
    if heads % kv_heads:
        raise ModelError(f"{path}: {heads} heads cannot share {kv_heads} key/value heads")
    return Hyperparameters(
        architecture=arch,
        block_count=get("block_count", int),
        embedding_length=width,
        feed_forward_length=get("feed_forward_length", int),
        head_count=heads,
        head_count_kv=kv_heads,
        head_dim=head_dim,
        rope_freq_base=get("rope.freq_base", float, 10000.0),
        rms_eps=get("attention.layer_norm_rms_epsilon", float),
        context_length=get("context_length", int),
    )
