"""Reading and writing safetensors files without the safetensors library's memory map.

The quantized copies (:mod:`companion.llm.quantize`) are written atomically and
read tensor by tensor into their own memory; a corrupt file is a
:class:`ModelError`, never a crash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from companion.errors import ModelError
from companion.llm.torchenv import import_torch

import_torch()  # sets OpenMP's wait policy before torch loads

import torch  # noqa: E402


def write_atomic(target: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Write a safetensors file tensor by tensor (no second in-memory copy), then rename it."""
    names = {dtype: name for name, dtype in _DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": meta}
    offset = 0
    for key, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        header[key] = {
            "dtype": names[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw_header = json.dumps(header).encode()
    raw_header += b" " * (-len(raw_header) % 8)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as f:
            f.write(len(raw_header).to_bytes(8, "little"))
            f.write(raw_header)
            for tensor in tensors.values():
                data: Any = tensor.contiguous().reshape(-1).view(torch.uint8).numpy()
                f.write(data)
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only or full cache: run from memory this time, build again next time
    finally:
        tmp.unlink(missing_ok=True)


_DTYPES = {
    "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
    "I8": torch.int8, "U8": torch.uint8, "I16": torch.int16, "I32": torch.int32,
    "I64": torch.int64, "BOOL": torch.bool,
}  # fmt: skip


def safetensors_header(path: Path) -> tuple[dict[str, str], dict[str, Any], int]:
    """``(metadata, tensor entries, offset of the data)`` of a safetensors file."""
    try:
        with path.open("rb") as f:
            total = os.fstat(f.fileno()).st_size
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= total - 8:
                raise ValueError(f"a header of {size} bytes in a file of {total}")
            header: dict[str, Any] = json.loads(f.read(size))
        if not isinstance(header, dict):
            raise ValueError("the header is not an object")
        meta = header.pop("__metadata__", None) or {}
        for entry in header.values():
            start, end = (int(x) for x in entry["data_offsets"])
            if not 0 <= start <= end <= total - 8 - size:
                raise ValueError("a tensor lies outside the file")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path.name} is damaged ({exc})") from exc
    return meta, header, 8 + size


def read_safetensors(
    path: Path,
    *,
    mapped: set[str] = frozenset(),  # type: ignore[assignment]
) -> Iterator[tuple[str, torch.Tensor]]:
    """Each tensor of a safetensors file, read into its own memory, in file order.

    Plain reads rather than a memory map: the mapped pages of a large file would
    count towards the process's peak memory on top of the copies. The tensors
    named in ``mapped`` are the exception: they stay in the file (a private
    copy-on-write map), and only the pages read take memory.
    """
    import mmap

    _, entries, base = safetensors_header(path)
    order = sorted(entries.items(), key=lambda item: int(item[1]["data_offsets"][0]))
    with path.open("rb") as f:
        for name, entry in order:
            start, end = (int(x) for x in entry["data_offsets"])
            dtype = _DTYPES.get(entry["dtype"])
            if dtype is None:
                raise ModelError(f"{path.name}: unsupported dtype {entry['dtype']} for {name}")
            if name in mapped and end > start:
                if os.fstat(f.fileno()).st_size < base + end:
                    raise ModelError(f"{path.name} is truncated (at {name})")
                view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
                raw = torch.frombuffer(
                    view, dtype=torch.uint8, count=end - start, offset=base + start
                )
                yield name, raw.view(dtype).reshape(entry["shape"])
                continue
            raw = torch.empty(end - start, dtype=torch.uint8)
            f.seek(base + start)
            buffer: Any = raw.numpy()
            if f.readinto(buffer) != end - start:
                raise ModelError(f"{path.name} is truncated (at {name})")
            yield name, raw.view(dtype).reshape(entry["shape"])
