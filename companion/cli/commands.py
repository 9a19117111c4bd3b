"""Slash commands of the terminal chat (``/help`` lists them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from companion.dialog import Companion
from companion.errors import CompanionError
from companion.persona import load_persona
from companion.reply import Reply
from companion.types import MemoryItem, Turn

HELP = """\
/help              this list
/memories          what she remembers about you (with ids)
/forget ID|WORDS   forget facts by id, or every fact matching the words
/persona [NAME]    show the persona, or switch to another one
/mood              her mood and your relationship, in words and numbers
/new               end this session and start a new one
/export [FILE]     write everything stored about you to a JSON file
/quit              leave (Ctrl-D works too)
Start a message with // to send a line that begins with /."""


@dataclass
class CommandContext:
    companion: Companion
    out: TextIO
    err: TextIO
    home: Path
    show: Callable[[Reply[Turn | None]], None]


def _print_items(out: TextIO, items: list[MemoryItem]) -> None:
    for item in items:
        print(f"  [{item.id}] {item.text}  ({item.kind}, {item.created_at:%Y-%m-%d})", file=out)


def run_command(ctx: CommandContext, line: str) -> str | None:
    """Run one slash command; returns ``"quit"`` when the chat should end."""
    name, _, arg = line.strip().partition(" ")
    arg = arg.strip()
    c = ctx.companion
    try:
        if name in ("/quit", "/exit", "/bye"):
            return "quit"
        if name == "/help":
            print(HELP, file=ctx.out)
        elif name == "/memories":
            items = c.memories()
            if not items:
                print("(nothing remembered yet)", file=ctx.out)
            _print_items(ctx.out, items)
        elif name == "/forget":
            if not arg:
                print("(usage: /forget ID or /forget WORDS)", file=ctx.err)
                return None
            removed = c.forget(int(arg) if arg.isdigit() else arg)
            if not removed:
                print(f"(no memory matches {arg!r})", file=ctx.out)
            else:
                print(f"Forgot {len(removed)}:", file=ctx.out)
                _print_items(ctx.out, removed)
        elif name == "/persona":
            if arg:
                c.switch_persona(load_persona(arg, user_dirs=[ctx.home / "personas"]))
                print(f"(now talking with {c.persona.name})", file=ctx.out)
            else:
                p = c.persona
                print(f"{p.name}: {p.description.strip().splitlines()[0] if p.description else ''}",
                      file=ctx.out)
        elif name == "/mood":
            print(c.mood(), file=ctx.out)
        elif name == "/new":
            ctx.show(c.new_session())
        elif name == "/export":
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            default = ctx.home / "exports" / f"{c.user}-{stamp}.json"
            path = Path(arg).expanduser() if arg else default
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(c.export(), indent=2, ensure_ascii=False), encoding="utf-8")
            print(f"(exported to {path})", file=ctx.out)
        else:
            print(f"(unknown command {name}; try /help)", file=ctx.err)
    except CompanionError as exc:
        print(f"(error: {exc})", file=ctx.err)
    except OSError as exc:
        print(f"(error: {exc.strerror or exc}: {exc.filename or ''})", file=ctx.err)
    return None
