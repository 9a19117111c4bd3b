"""``companion models [list]``, ``companion models fetch NAME`` and ``companion models prune``."""

from __future__ import annotations

import argparse

from companion.errors import ModelNotFoundError
from companion.llm.diskuse import local_copies, megabytes, prune, usage
from companion.llm.fetch import fetch_gguf
from companion.llm.loader import list_models
from companion.llm.registry import load_registry

_OLD_COPIES = "copies older versions converted"


def run_models(args: argparse.Namespace) -> int:
    if args.models_command == "fetch":
        registry = load_registry()
        entry = registry.get(args.name)
        if entry is None:
            raise ModelNotFoundError(args.name, tried=["registry"], available=registry.names())
        print(fetch_gguf(entry))
        return 0
    if args.models_command == "prune":
        return _prune(args)
    registry = load_registry()
    for info in list_models():
        mark = "*" if info.default else " "
        state = "ready" if info.cached else f"not downloaded ({info.size / 1e6:,.0f} MB)"
        entry = registry.get(info.name)
        if entry is not None:
            used = usage(entry)
            if used.gguf_bytes:
                state += f"; on disk: {megabytes(used.gguf_bytes)} GGUF"
            if used.copies_bytes:
                state += f" + {megabytes(used.copies_bytes)} of {_OLD_COPIES} (models prune)"
        print(f"{mark} {info.name:<30} {state}\n    {info.description}")
    strays = sum(size for _, size in local_copies())
    if strays:
        print(f"  and {megabytes(strays)} of {_OLD_COPIES} from .gguf files (models prune)")
    print("(* the default. --model also takes a Hugging Face id, a local folder or a .gguf file)")
    return 0


def _prune(args: argparse.Namespace) -> int:
    """Remove what older versions converted (float32 and int8/int4 copies); keep the GGUFs."""
    registry = load_registry()
    found = [p for entry in registry.models for p in usage(entry).copies] + list(local_copies())
    if not found:
        print(f"Nothing to prune: the model cache holds no {_OLD_COPIES}.")
        return 0
    for path, size in found:
        print(f"  {megabytes(size):>9}  {path}")
    total = sum(size for _, size in found)
    print(f"{megabytes(total)} of {_OLD_COPIES} (the GGUF files stay; nothing needs them).")
    if not args.yes:
        try:
            answer = input("Delete them? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 0
    freed = prune(registry.models)
    print(f"Deleted: {megabytes(freed)} freed.")
    return 0
