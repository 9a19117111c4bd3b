"""``companion persona list|show|import|export``."""

from __future__ import annotations

import argparse
from pathlib import Path

from companion.cli.output import emit_json
from companion.paths import data_dir
from companion.persona import (
    export_card,
    import_card,
    list_personas,
    load_persona,
    persona_slug,
    persona_to_toml,
    save_persona_toml,
)


def run_persona(args: argparse.Namespace) -> int:
    user_dir = data_dir() / "personas"
    action = args.persona_command
    if action == "list":
        for name in list_personas([user_dir]):
            print(name)
    elif action == "show":
        print(persona_to_toml(load_persona(args.name, user_dirs=[user_dir])), end="")
    elif action == "import":
        persona = import_card(Path(args.path))
        name = args.name or persona.name
        target = user_dir / f"{persona_slug(name)}.toml"
        user_dir.mkdir(parents=True, exist_ok=True)
        save_persona_toml(persona, target)
        print(f"Imported {persona.name!r} as {target.stem} ({target}). "
              f"Use it with: companion chat --persona {target.stem}")
    elif action == "export":
        emit_json(export_card(load_persona(args.name, user_dirs=[user_dir])), args.output)
    return 0
