"""``companion models [list]``, ``companion models fetch NAME`` and ``companion models prune``."""

from __future__ import annotations

import argparse

from companion.errors import ModelNotFoundError
from companion.llm.diskuse import megabytes, prune, usage
from companion.llm.fetch import fetch_model
from companion.llm.loader import list_models
from companion.llm.registry import load_registry


def run_models(args: argparse.Namespace) -> int:
    if args.models_command == "fetch":
        registry = load_registry()
        entry = registry.get(args.name)
        if entry is None:
            raise ModelNotFoundError(args.name, tried=["registry"], available=registry.names())
        print(fetch_model(entry))
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
                state += f" + {megabytes(used.copies_bytes)} of converted copies"
        print(f"{mark} {info.name:<30} {state}\n    {info.description}")
    print("(* the default. --model also takes a Hugging Face id, a local folder or a .gguf file)")
    return 0


def _prune(args: argparse.Namespace) -> int:
    """Remove the converted copies (float32 and int8/int4) of every registry model."""
    registry = load_registry()
    found = [(entry, usage(entry)) for entry in registry.models]
    found = [(entry, used) for entry, used in found if used.copies]
    if not found:
        print("Nothing to prune: the model cache holds no converted copies.")
        return 0
    total = sum(used.copies_bytes for _, used in found)
    for _entry, used in found:
        for path, size in used.copies:
            print(f"  {megabytes(size):>9}  {path}")
    print(f"{megabytes(total)} of converted copies (the GGUF files stay).")
    if not args.yes:
        try:
            answer = input("Delete them? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 0
    freed = prune([entry for entry, _ in found])
    print(f"Deleted: {megabytes(freed)} freed.")
    return 0
