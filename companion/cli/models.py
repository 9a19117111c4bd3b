"""``companion models [list]`` and ``companion models fetch NAME``."""

from __future__ import annotations

import argparse

from companion.errors import ModelNotFoundError
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
    for info in list_models():
        mark = "*" if info.default else " "
        state = "ready" if info.cached else f"not downloaded ({info.size / 1e6:,.0f} MB)"
        print(f"{mark} {info.name:<30} {state}\n    {info.description}")
    print("(* the default. --model also takes a Hugging Face id, a local folder or a .gguf file)")
    return 0
