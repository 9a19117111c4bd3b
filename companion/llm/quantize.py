"""Low-bit weights for the CPU: int8 or int4 linear layers, cached on disk.

Decoding one token reads every weight once, so on a CPU its speed is set by the
bytes of weights read. A folder's weights are float32; this module replaces
each ``nn.Linear`` (the tied output layer included) with one that keeps

- ``int8``: one signed byte per weight and a scale per output row;
- ``int4``: GGUF's Q4_1 layout, 4-bit weights with a float16 scale and minimum
  per block of 32 inputs (a Q4_1 GGUF source comes back exactly); the output
  layer keeps int8, as GGUF's own Q4 mixes keep it at 6-8 bits.

The input embedding becomes int8 rows with a scale each (a lookup dequantizes
only the rows it reads); the tied output layer shares those bytes. Int8 layers
run on ``aten._weight_int8pack_mm`` (bfloat16 activations) in the transformers
forward; int4 layers, and both in :mod:`companion.llm.lean`'s forward, run on
the native AVX2 kernels (:mod:`companion.llm.native`: activations quantized to
int8 blocks, byte multiply-adds), with a pure-torch fallback elsewhere.
Plain modules rather than tensor subclasses avoid a dispatch per layer per
token and let the quantized copy be a plain safetensors file.

The quantized copy is built from the float32 safetensors one tensor at a time
(peak memory: the quantized model plus one float32 tensor, not a full float32
copy) and written atomically to the models cache, keyed by the source files,
the method and the torch version; later starts load it directly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from companion.errors import ModelError
from companion.llm.torchenv import import_torch

import_torch()  # sets OpenMP's wait policy before torch loads

import torch  # noqa: E402
from torch import nn  # noqa: E402

from companion.llm.safetensors_io import (  # noqa: E402
    read_safetensors,
    safetensors_header,
    write_atomic,
)

_write_atomic = write_atomic  # the name the tests use

Method = Literal["none", "int8", "int4"]
#: What ``quantize=`` accepts; "auto" is resolved by :func:`resolve_method`.
CHOICES = ("auto", "none", "int8", "int4")
#: Inputs per int4 group (scale and offset each).
GROUP_SIZE = 32
#: Bumped when the on-disk layout changes, so older cached copies are rebuilt.
FORMAT_VERSION = 2
#: Rows quantized at once (a multiple of the int4 packing's row blocks).
_ROWS = 4096
#: On the CPU when neither the caller nor the registry says otherwise.
CPU_DEFAULT: Method = "int8"


def resolve_method(requested: str, *, device: str) -> Method:
    """The method to use: ``requested``, or for "auto" full precision on a GPU
    (these kernels are CPU kernels) and :data:`CPU_DEFAULT` on the CPU."""
    if requested not in CHOICES:
        raise ModelError(f"quantize must be one of {', '.join(CHOICES)}, not {requested!r}")
    on_cpu = device == "cpu"
    if requested == "auto":
        if not on_cpu:
            return "none"
        return CPU_DEFAULT
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
    """``y = x @ W.T + b`` with ``W`` in 4-bit blocks of :data:`GROUP_SIZE` inputs.

    GGUF's Q4_1 layout: ``qweight`` uint8 ``[N, K/2]`` (block byte ``j`` holds input
    ``j`` in its low nibble and ``j + 16`` in its high one), ``scales`` and
    ``mins`` float16 ``[N, K/32]``; a weight is ``scale * q + min``, q in 0..15.
    Multiplied by the native kernel (:mod:`companion.llm.native`) where it runs,
    else by dequantizing in torch (correct, slower).
    """

    qweight: torch.Tensor
    scales: torch.Tensor
    mins: torch.Tensor
    bias: torch.Tensor | None

    def __init__(
        self,
        qweight: torch.Tensor,
        scales: torch.Tensor,
        mins: torch.Tensor,
        bias: torch.Tensor | None,
    ):
        super().__init__()
        self.out_features = qweight.shape[0]
        self.in_features = qweight.shape[1] * 2
        self.register_buffer("qweight", qweight)
        self.register_buffer("scales", scales)
        self.register_buffer("mins", mins)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from companion.llm.native import kernels

        flat = x.reshape(-1, self.in_features).float().contiguous()
        native = kernels()
        bias = None if self.bias is None else self.bias.float().contiguous()
        if native is not None and flat.device.type == "cpu":
            y = native.q4_linear(flat, self, bias, torch.get_num_threads())
        else:
            y = nn.functional.linear(
                flat, dequantize_int4(self.qweight, self.scales, self.mins), bias
            )
        out: torch.Tensor = y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
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


def quantize_int4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric 4-bit blocks of 32 (:class:`Int4Linear`'s layout): ``(qweight, scales, mins)``.

    ``scale = (max - min) / 15`` and ``min`` in float16, so a block's minimum is
    exact and weights that were already Q4_1 (a GGUF source) come back unchanged.
    """
    n, k = weight.shape
    packed = torch.empty((n, k // 2), dtype=torch.uint8)
    scales = torch.empty((n, k // GROUP_SIZE), dtype=torch.float16)
    mins = torch.empty((n, k // GROUP_SIZE), dtype=torch.float16)
    for start in range(0, n, _ROWS):  # bounded temporaries for big tables
        groups = weight[start : start + _ROWS].float().reshape(-1, k // GROUP_SIZE, GROUP_SIZE)
        low = groups.amin(dim=-1).to(torch.float16)
        scale = ((groups.amax(dim=-1) - low.float()) / 15).to(torch.float16)
        step = scale.float().unsqueeze(-1)
        q = (
            torch.where(
                step > 0,
                torch.round((groups - low.float().unsqueeze(-1)) / step.clamp(min=1e-30)),
                0.0,
            )
            .clamp(0, 15)
            .to(torch.uint8)
        )
        half = GROUP_SIZE // 2
        rows = slice(start, start + groups.shape[0])
        packed[rows] = (q[..., :half] | (q[..., half:] << 4)).reshape(groups.shape[0], k // 2)
        scales[rows], mins[rows] = scale, low
    return packed, scales, mins


def dequantize_int4(
    qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor
) -> torch.Tensor:
    """The float32 weights of an :class:`Int4Linear`."""
    n = qweight.shape[0]
    blocks = qweight.reshape(n, -1, GROUP_SIZE // 2)
    q = torch.cat([blocks & 0x0F, blocks >> 4], dim=-1).float()
    w = q * scales.float().unsqueeze(-1) + mins.float().unsqueeze(-1)
    return w.reshape(n, -1)


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
    files = weight_files(folder)
    target = cached_path(folder, files, method, cache)
    model = _skeleton(folder)
    cached = None
    if target.is_file():
        try:
            cached = read_quantized(target)
        except ModelError as exc:  # a damaged copy is only a cache: make it again
            if progress is not None:
                progress(f"{exc}; making it again")
            target.unlink(missing_ok=True)
    built = cached is None
    if cached is None:
        if progress is not None:
            progress(f"quantizing {folder.name} to {method} (once)")
        tensors, kinds = _quantize_files(model, files, method)
        write_atomic(target, tensors, {"method": method, "kinds": json.dumps(kinds)})
    else:
        tensors, kinds = cached
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


def weight_files(folder: Path) -> list[Path]:
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
        # The output layer keeps 8 bits under int4 too (as GGUF's Q4 mixes do):
        # it is the layer most sensitive to rounding.
        if method == "int8" or name == out_name:
            q, scales = quantize_int8(weight)
            tensors[f"{name}.qweight"], tensors[f"{name}.scales"] = q, scales.to(torch.bfloat16)
        else:
            q4, scales, mins = quantize_int4(weight)
            tensors[f"{name}.qweight"], tensors[f"{name}.scales"] = q4, scales
            tensors[f"{name}.mins"] = mins
        kinds[name] = "int8" if name == out_name else method

    for path in files:
        for key, tensor in read_safetensors(path):
            if key in by_weight:
                add_linear(by_weight[key], tensor)
            elif emb_name is not None and key == f"{emb_name}.weight":
                q, scales = quantize_int8(tensor)
                tensors[f"{emb_name}.qweight"], tensors[f"{emb_name}.scales"] = q, scales
                kinds[emb_name] = "embedding"
                if tied and out_name:
                    kinds[out_name] = f"tied:{emb_name}"
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
            module = Int4Linear(
                tensors[f"{name}.qweight"],
                tensors[f"{name}.scales"],
                tensors[f"{name}.mins"],
                tensors.get(f"{name}.bias"),
            )
        model.set_submodule(name, module)
    done = {f"{n}.{p}" for n in kinds for p in ("qweight", "scales", "mins", "bias")}
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


def read_quantized(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and module kinds of a cached quantized copy (no model object:
    :mod:`companion.llm.lean` runs from these directly)."""
    kinds: dict[str, str] = json.loads(safetensors_header(path)[0].get("kinds", "{}"))
    # An embedding table no output layer shares is read a few rows per token:
    # mapped from the file, only the rows read take memory (136 MB saved on
    # Qwen2.5 0.5B). Everything else is read every token, so it is copied in.
    shared = {kind.removeprefix("tied:") for kind in kinds.values() if kind.startswith("tied:")}
    mapped = {
        f"{name}.qweight"
        for name, kind in kinds.items()
        if kind == "embedding" and name not in shared
    }
    tensors = dict(read_safetensors(path, mapped=mapped))
    return tensors, kinds


def iter_quantized_layers(model: Any) -> Iterator[tuple[str, str]]:
    """``(module name, kind)`` of each quantized module of ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, Int8Linear):
            yield name, "int8"
        elif isinstance(module, Int4Linear):
            yield name, "int4"
        elif isinstance(module, Int8Embedding):
            yield name, "int8-embedding"
