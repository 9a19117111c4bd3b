"""Convert a GGUF file once into a transformers folder (safetensors + tokenizer).

Loading a GGUF through transformers dequantizes every tensor and rebuilds the
tokenizer from the file's vocabulary: 15-60 s on a laptop CPU. The converted
copy loads in 0.5-3 s. The weights are stored in float32, the dtype GGUF
tensors are dequantized to, so nothing is lost beyond the GGUF's own rounding.

The conversion writes into a temporary sibling folder and renames it into place
after a marker file (``companion-model.json``) is written, so an interrupted
conversion never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from companion.errors import ModelError

#: Written last into a converted folder: a folder without it is incomplete.
MARKER = "companion-model.json"


def convert_gguf(
    gguf: Path,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: Callable[[str], None],
) -> Path:
    """Convert ``gguf`` into the transformers folder ``dest``; return ``dest``.

    ``sha256`` (of the GGUF, when known) is recorded in the marker file;
    ``progress`` gets one line per step.
    """
    from companion.llm.torchenv import import_torch

    try:
        torch = import_torch()
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelError(
            "converting a model needs the local model stack: pip install 'companion[llm]'"
        ) from exc

    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    try:
        progress(f"  reading the tokenizer from {gguf.name}")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        progress(f"  reading and dequantizing the weights of {gguf.name}")
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, **_dequantize_kwargs()
        )
        detach_gguf_quantizer(model)
        progress(f"  writing {dest.name} (safetensors)")
        model.save_pretrained(str(tmp))
        if not tokenizer.chat_template:
            tokenizer.chat_template = gguf_chat_template(gguf)
        tokenizer.save_pretrained(str(tmp))
        _check_chat_template(tmp, gguf)
        marker = {
            "source": gguf.name,
            "source_sha256": sha256,
            "dtype": "float32",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if dest.exists():  # an older or foreign folder without our marker
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"cannot convert {gguf.name}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _dequantize_kwargs() -> dict[str, Any]:
    """Ask transformers (5.x) to unpack every GGUF block; older versions always do."""
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def detach_gguf_quantizer(model: Any) -> None:
    """Make a model loaded from GGUF look like a plain dense model, so it can be saved.

    transformers 5 attaches a GGUF quantizer to such a model and its
    ``save_pretrained`` refuses "non-serializable" quantized models. With
    ``dequantize=True`` the quantizer removes itself; this also handles a
    model loaded without it, provided every weight was unpacked.
    """
    kinds = {type(m).__name__ for m in model.modules()}
    packed = sorted(k for k in kinds if "gguf" in k.lower())
    if packed:
        raise ModelError(f"the GGUF weights were left packed ({', '.join(packed)}); cannot save")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is None:
            continue
        if getattr(config, "_is_quantized", False):
            config._is_quantized = False
        if getattr(config, "quantization_config", None) is not None:
            del config.quantization_config


def gguf_chat_template(gguf: Path) -> str | None:
    """The chat template stored in a GGUF file's metadata, if any."""
    from gguf import GGUFReader

    field = GGUFReader(str(gguf)).fields.get("tokenizer.chat_template")
    if field is None or not field.data:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def _check_chat_template(folder: Path, gguf: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.chat_template:
        return
    template = gguf_chat_template(gguf)
    if not template:
        raise ModelError(f"{gguf.name} has no chat template; it cannot be used as a chat model")
    tokenizer.chat_template = template
    tokenizer.save_pretrained(str(folder))
