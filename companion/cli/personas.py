"""``companion persona list|show|import|export``.

``export -o NAME.png`` writes a PNG card (the V2 card in a ``chara`` text chunk,
as SillyTavern writes them); any other name, or none, gets the card as JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from companion.cli.output import echo, emit_json
from companion.errors import PersonaError
from companion.paths import data_dir, private_dir
from companion.persona import (
    card_to_png,
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
        try:
            private_dir(user_dir)  # the data directory too, if this is its first use: 0700
        except OSError as exc:
            raise PersonaError(f"cannot create {user_dir}: {exc.strerror or exc}") from exc
        save_persona_toml(persona, target)
        print(f"Imported {persona.name!r} as {target.stem} ({target}). "
              f"Use it with: companion chat --persona {target.stem}")
    elif action == "export":
        card = export_card(load_persona(args.name, user_dirs=[user_dir]))
        if args.output and Path(args.output).suffix.lower() == ".png":
            _write_png_card(card_to_png(card), Path(args.output), force=args.force)
        else:
            emit_json(card, args.output, overwrite=args.force)
    return 0


def _write_png_card(data: bytes, path: Path, *, force: bool = False) -> None:
    try:
        with path.open("wb" if force else "xb") as out:  # never replaced without --force
            out.write(data)
    except FileExistsError as exc:
        raise PersonaError(f"{path} already exists (use --force to replace it)") from exc
    except OSError as exc:
        raise PersonaError(f"cannot write card: {exc.strerror or exc}", path=path) from exc
    echo(f"Wrote {path}", sys.stderr)
