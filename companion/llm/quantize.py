"""Low-bit weights for the CPU: int8 or int4 linear layers, cached on disk.

Decoding one token reads every weight once, so on a CPU its speed is set by the
bytes of weights read. The converted models are float32; this module replaces
each ``nn.Linear`` (the tied output layer included) with one that keeps

- ``int8``: one signed byte per weight and a scale per output row, multiplied by
  ``aten._weight_int8pack_mm``;
- ``int4``: 4-bit weights with a scale and offset per group of 32 inputs (the
  layout of GGUF's Q4_1 / Q4_K sub-blocks, so a GGUF-sourced model loses almost
  nothing more), multiplied by ``aten._weight_int4pack_mm_for_cpu``.

Both kernels take bfloat16 activations (their float32 paths are 5-10x slower):
a quantized layer casts its input to bfloat16 and its output back, so the rest
of the model (norms, attention, the cache) stays in float32. The input
embedding becomes int8 rows with a scale each (a lookup dequantizes only the
rows it reads); with int8 the tied output layer shares those bytes. These are
the kernels torchao's CPU int4/int8 weight-only tensors call; calling them from
plain modules avoids a tensor-subclass dispatch per layer per token (it matters
at 200+ layers per token) and lets the quantized copy be a plain safetensors file.

The quantized copy is built from the float32 safetensors one tensor at a time
(peak memory: the quantized model plus one float32 tensor, not a full float32
copy) and written atomically to the models cache, keyed by the source files,
the method and the torch version; later starts load it directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from companion.errors import ModelError
from companion.llm.transformers_backend import import_torch

import_torch()  # sets OpenMP's wait policy before torch loads

import torch  # noqa: E402
from torch import nn  # noqa: E402

Method = Literal["none", "int8", "int4"]
#: What ``quantize=`` accepts; "auto" is resolved by :func:`resolve_method`.
CHOICES = ("auto", "none", "int8", "int4")
#: Inputs per int4 group (scale and offset each).
GROUP_SIZE = 32
#: Bumped when the on-disk layout changes, so older cached copies are rebuilt.
FORMAT_VERSION = 1
#: Rows quantized at once (a multiple of the int4 packing's row blocks).
_ROWS = 4096
#: On the CPU when neither the caller nor the registry says otherwise.
CPU_DEFAULT: Method = "int8"


def resolve_method(requested: str, *, device: str, recommended: str | None = None) -> Method:
    """The method to use: ``requested``, or for "auto" the CPU recommendation.

    "auto" means full precision on a GPU (these kernels are CPU kernels) and on
    the CPU the registry's ``cpu_quantize`` for the model, else :data:`CPU_DEFAULT`.
    """
    if requested not in CHOICES:
        raise ModelError(f"quantize must be one of {', '.join(CHOICES)}, not {requested!r}")
    on_cpu = device == "cpu"
    if requested == "auto":
        if not on_cpu:
            return "none"
        choice = recommended or CPU_DEFAULT
        return choice if choice in ("none", "int8", "int4") else CPU_DEFAULT  # type: ignore[return-value]
    if requested != "none" and not on_cpu:
        raise ModelError(f"{requested} weights are for the CPU; use quantize='none' on {device}")
    return requested  # type: ignore[return-value]


# -- layers -------------------------------------------------------------------


class Int8Linear(nn.Module):
    """``y = x @ W.T + b`` with ``W`` as int8 rows times a bfloat16 scale per row."""

    qweight: torch.Tensor
    scales: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.out_features, self.in_features = qweight.shape
        self.register_buffer("qweight", qweight)
        self.register_buffer("scales", scales)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int8pack_mm(flat, self.qweight, self.scales).to(x.dtype)
        if self.bias is not None:
            y = y + self.bias
        out: torch.Tensor = y.reshape(*x.shape[:-1], self.out_features)
        return out


class Int4Linear(nn.Module):
    """``y = x @ W.T + b`` with ``W`` in 4-bit groups of :data:`GROUP_SIZE`, packed for the CPU."""

    qweight: torch.Tensor
    scales_and_zeros: torch.Tensor
    bias: torch.Tensor | None

    def __init__(
        self,
        qweight: torch.Tensor,
        scales_and_zeros: torch.Tensor,
        bias: torch.Tensor | None,
        *,
        in_features: int,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = scales_and_zeros.shape[1]
        self.register_buffer("qweight", qweight)
        self.register_buffer("scales_and_zeros", scales_and_zeros)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(
            flat, self.qweight, GROUP_SIZE, self.scales_and_zeros
        ).to(x.dtype)
        if self.bias is not None:
            y = y + self.bias
        out: torch.Tensor = y.reshape(*x.shape[:-1], self.out_features)
        return out


class Int8Embedding(nn.Module):
    """An embedding table stored as int8 rows with a float32 scale each."""

    qweight: torch.Tensor
    scales: torch.Tensor

    def __init__(self, qweight: torch.Tensor, scales: torch.Tensor):
        super().__init__()
        self.num_embeddings, self.embedding_dim = qweight.shape
        self.register_buffer("qweight", qweight)
        self.register_buffer("scales", scales)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows: torch.Tensor = self.qweight[ids].float() * self.scales[ids].float().unsqueeze(-1)
        return rows


# -- quantizing one tensor --------------------------------------------------------


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``(qweight int8 [N, K], scales float32 [N])``."""
    q = torch.empty(weight.shape, dtype=torch.int8)
    scales = torch.empty(weight.shape[0], dtype=torch.float32)
    for start in range(0, weight.shape[0], _ROWS):  # bounded temporaries for big tables
        w = weight[start : start + _ROWS].float()
        s = (w.abs().amax(dim=1) / 127).clamp(min=1e-12)
        q[start : start + _ROWS] = torch.round(w / s[:, None]).clamp(-127, 127)
        scales[start : start + _ROWS] = s
    return q, scales


def quantize_int4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric 4-bit per group: ``(packed uint8 [N, K/2], scales_and_zeros bf16 [K/g, N, 2])``.

    The kernel computes ``w = (q - 8) * scale + zero``; with ``scale = (max - min) / 15``
    and ``zero = min + 8 * scale`` a group's minimum and maximum are exact.
    """
    packed, sz = [], []
    for start in range(0, weight.shape[0], _ROWS):  # the packing is per block of rows
        w = weight[start : start + _ROWS].float()
        n, k = w.shape
        groups = w.reshape(n, k // GROUP_SIZE, GROUP_SIZE)
        low = groups.amin(dim=-1, keepdim=True)
        high = groups.amax(dim=-1, keepdim=True)
        scale = ((high - low) / 15).clamp(min=1e-8)
        q = torch.round((groups - low) / scale).clamp(0, 15).to(torch.int32).reshape(n, k)
        packed.append(torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
        zero = low + 8 * scale
        sz.append(torch.cat([scale, zero], dim=-1).transpose(0, 1).to(torch.bfloat16))
    return torch.cat(packed), torch.cat(sz, dim=1).contiguous()


def can_quantize(method: Method, weight_shape: tuple[int, ...]) -> bool:
    """Whether a linear layer of this shape gets ``method`` (else it stays float32)."""
    if len(weight_shape) != 2:
        return False
    return method == "int8" or (method == "int4" and weight_shape[1] % GROUP_SIZE == 0)


# -- building and caching the quantized copy ----------------------------------------


def load_quantized(
    folder: Path, method: Method, *, cache: Path, progress: Any = None
) -> tuple[Any, bool]:
    """The model in ``folder`` with ``method`` weights; ``(model, built)``.

    ``built`` tells whether the quantized copy was made now (first start) rather
    than read from ``cache``.
    """
    files = _weight_files(folder)
    target = cached_path(folder, files, method, cache)
    model = _skeleton(folder)
    built = not target.is_file()
    if built:
        if progress is not None:
            progress(f"quantizing {folder.name} to {method} (once)")
        tensors, kinds = _quantize_files(model, files, method)
        _write_atomic(target, tensors, {"method": method, "kinds": json.dumps(kinds)})
    else:
        tensors, kinds = _read(target)
    _install(model, tensors, kinds)
    return model, built


def cached_path(folder: Path, files: list[Path], method: Method, cache: Path) -> Path:
    """Where the ``method`` copy of the model in ``folder`` is cached."""
    ident = [str(folder.resolve())]
    for f in files:
        stat = f.stat()
        ident.append(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}")
    key = hashlib.sha256("\n".join(ident).encode()).hexdigest()[:12]
    version = torch.__version__.split("+")[0]
    name = f"{method}-g{GROUP_SIZE}-v{FORMAT_VERSION}-torch{version}.safetensors"
    return cache / "quantized" / f"{folder.name}-{key}" / name


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelError(f"{folder} has no .safetensors weights to quantize")
    return files


def _skeleton(folder: Path) -> Any:
    """The model with its parameters on the meta device (no memory) and buffers on the CPU."""
    from accelerate import init_empty_weights  # type: ignore[import-untyped]
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    auto: Any = AutoModelForCausalLM  # its classmethods are untyped

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    with init_empty_weights(include_buffers=False):
        model = auto.from_config(config, dtype=torch.float32)
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(str(folder))
    return model


def _roles(model: Any, method: Method) -> tuple[dict[str, str], str | None, bool]:
    """``(linear module name -> weight name, embedding module name, tied)``."""
    embedding = model.get_input_embeddings()
    emb_name = next((n for n, m in model.named_modules() if m is embedding), None)
    linears = {
        name: f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and can_quantize(method, tuple(module.weight.shape))
    }
    output = model.get_output_embeddings()
    text_config = model.config.get_text_config()
    tied = output is not None and (
        output.weight is embedding.weight
        or bool(getattr(text_config, "tie_word_embeddings", False))
    )
    return linears, emb_name, tied


def _quantize_files(
    model: Any, files: list[Path], method: Method
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    linears, emb_name, tied = _roles(model, method)
    by_weight = {w: name for name, w in linears.items()}
    out_name = next((n for n, m in model.named_modules() if m is model.get_output_embeddings()), "")
    tensors: dict[str, torch.Tensor] = {}
    kinds: dict[str, str] = {}

    def add_linear(name: str, weight: torch.Tensor) -> None:
        if method == "int8":
            q, scales = quantize_int8(weight)
            tensors[f"{name}.qweight"], tensors[f"{name}.scales"] = q, scales.to(torch.bfloat16)
        else:
            tensors[f"{name}.qweight"], tensors[f"{name}.scales_and_zeros"] = quantize_int4(weight)
        kinds[name] = method

    for path in files:
        for key, tensor in read_safetensors(path):
            if key in by_weight:
                add_linear(by_weight[key], tensor)
            elif emb_name is not None and key == f"{emb_name}.weight":
                q, scales = quantize_int8(tensor)
                tensors[f"{emb_name}.qweight"], tensors[f"{emb_name}.scales"] = q, scales
                kinds[emb_name] = "embedding"
                if tied and out_name:
                    if method == "int8":
                        kinds[out_name] = f"tied:{emb_name}"
                    elif out_name in linears:
                        add_linear(out_name, tensor)
            else:
                tensors[key] = tensor.float() if tensor.is_floating_point() else tensor
            del tensor
    missing = [n for n in linears if n not in kinds]
    if missing:
        raise ModelError(f"no weights found for {', '.join(missing[:3])} in {files[0].parent}")
    return tensors, kinds


def _install(model: Any, tensors: dict[str, torch.Tensor], kinds: dict[str, str]) -> None:
    """Put quantized modules and the remaining tensors into the skeleton."""
    for name, kind in kinds.items():
        if kind == "embedding":
            module: nn.Module = Int8Embedding(tensors[f"{name}.qweight"], tensors[f"{name}.scales"])
        elif kind.startswith("tied:"):
            source = kind.removeprefix("tied:")
            module = _int8_linear(tensors[f"{source}.qweight"], tensors[f"{source}.scales"], None)
        elif kind == "int8":
            module = _int8_linear(
                tensors[f"{name}.qweight"], tensors[f"{name}.scales"], tensors.get(f"{name}.bias")
            )
        else:
            old = model.get_submodule(name)
            module = Int4Linear(
                tensors[f"{name}.qweight"],
                tensors[f"{name}.scales_and_zeros"],
                tensors.get(f"{name}.bias"),
                in_features=old.in_features,
            )
        model.set_submodule(name, module)
    done = {f"{n}.{p}" for n in kinds for p in ("qweight", "scales", "scales_and_zeros", "bias")}
    for key, tensor in tensors.items():
        if key in done:
            continue
        parent, _, leaf = key.rpartition(".")
        owner = model.get_submodule(parent)
        if leaf in owner._buffers:
            owner._buffers[leaf] = tensor
        else:
            setattr(owner, leaf, nn.Parameter(tensor, requires_grad=False))
    empty = [n for n, p in model.named_parameters() if p.is_meta]
    if empty:
        raise ModelError(f"the quantized model has no weights for {', '.join(empty[:3])}")
    model.eval()


def _int8_linear(
    qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None
) -> nn.Module:
    return Int8Linear(qweight, scales.to(torch.bfloat16), bias)


def _write_atomic(target: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
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


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    tensors = dict(read_safetensors(path))
    kinds: dict[str, str] = json.loads(safetensors_header(path)[0].get("kinds", "{}"))
    return tensors, kinds


_DTYPES = {
    "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
    "I8": torch.int8, "U8": torch.uint8, "I16": torch.int16, "I32": torch.int32,
    "I64": torch.int64, "BOOL": torch.bool,
}  # fmt: skip


def safetensors_header(path: Path) -> tuple[dict[str, str], dict[str, Any], int]:
    """``(metadata, tensor entries, offset of the data)`` of a safetensors file."""
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header: dict[str, Any] = json.loads(f.read(size))
    meta = header.pop("__metadata__", None) or {}
    return meta, header, 8 + size


def read_safetensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Each tensor of a safetensors file, read into its own memory, in file order.

    Plain reads rather than a memory map: the mapped pages of a large file would
    count towards the process's peak memory on top of the copies.
    """
    _, entries, base = safetensors_header(path)
    order = sorted(entries.items(), key=lambda item: int(item[1]["data_offsets"][0]))
    with path.open("rb") as f:
        for name, entry in order:
            start, end = (int(x) for x in entry["data_offsets"])
            dtype = _DTYPES.get(entry["dtype"])
            if dtype is None:
                raise ModelError(f"{path.name}: unsupported dtype {entry['dtype']} for {name}")
            raw = torch.empty(end - start, dtype=torch.uint8)
            f.seek(base + start)
            buffer: Any = raw.numpy()
            if f.readinto(buffer) != end - start:
                raise ModelError(f"{path.name} is truncated (at {name})")
            yield name, raw.view(dtype).reshape(entry["shape"])


def clear_cache(cache: Path) -> None:
    """Remove every cached quantized copy under ``cache``."""
    shutil.rmtree(cache / "quantized", ignore_errors=True)


def iter_quantized_layers(model: Any) -> Iterator[tuple[str, str]]:
    """``(module name, kind)`` of each quantized module of ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, Int8Linear):
            yield name, "int8"
        elif isinstance(module, Int4Linear):
            yield name, "int4"
        elif isinstance(module, Int8Embedding):
            yield name, "int8-embedding"
