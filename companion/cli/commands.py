"""Slash commands of the terminal chat (``/help`` lists them)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from companion.cli.agenda_chat import AGENDA_COMMANDS, agenda_command
from companion.cli.memory import is_id, label, parse_target
from companion.cli.output import echo, to_json, write_private
from companion.dialog import Companion
from companion.errors import CompanionError, InputError
from companion.memory.forget import Removed, cascade_forget
from companion.persona import load_persona
from companion.reply import Reply
from companion.text import safe
from companion.types import MemoryItem, Turn

HELP = """\
/help              this list
/memories          what she remembers about you (with ids)
/forget ID|WORDS   forget a memory by id, or (after showing them and asking)
                   everything that matches the words
/persona [NAME]    show the persona, or switch to another one
/mood              her mood and your relationship, in words and numbers
/retry             another reply to your last message, in place of hers
/new               end this session and start a new one
/agenda            your reminders and plans (with numbers)
/done N            mark agenda item N done (a repeating one: this time)
/snooze N 10m      remind again in 10m (2h, 1d, "half an hour", ...)
/cancel N          cancel agenda item N (a repeating one: all of it)
/export [FILE] [--force]
                   write everything stored about you to a private JSON file
                   (never replaces a file unless --force is given)
/quit              leave (Ctrl-D works too)
Start a message with // to send a line that begins with /."""


@dataclass
class CommandContext:
    companion: Companion
    out: TextIO
    err: TextIO
    home: Path
    show: Callable[[Reply[Turn | None]], None]
    #: Asks a yes/no question; False unless the user answers yes (or at end of input).
    ask: Callable[[str], bool] = lambda _question: False


def _print_items(out: TextIO, items: list[MemoryItem]) -> None:
    for item in items:
        echo(f"  [{label(item)}] {safe(item.text, one_line=True)}  "
             f"({item.kind}, {item.created_at:%Y-%m-%d})", out)


class _Preview(Exception):
    """Raised inside a transaction to roll back a forget that was only a preview."""

    def __init__(self, removed: Removed) -> None:
        super().__init__("preview")
        self.removed = removed


def preview_forget(c: Companion, words: str) -> Removed:
    """What ``c.forget(words)`` would remove, computed and rolled back (nothing changes)."""
    try:
        with c.store.transaction() as conn:
            raise _Preview(cascade_forget(conn, c.user, words))
    except _Preview as preview:
        return preview.removed


def _forget(ctx: CommandContext, arg: str) -> None:
    c = ctx.companion
    if not arg:
        echo("(usage: /forget ID or /forget WORDS)", ctx.err)
        return
    target = parse_target(arg)
    if not is_id(target):
        preview = preview_forget(c, arg)
        if not preview.items:
            echo(f"(no memory matches {safe(arg, one_line=True)!r})", ctx.out)
            return
        echo(f"This would forget {preview.describe().removeprefix('removed ')}:", ctx.out)
        _print_items(ctx.out, preview.items)
        if not ctx.ask("Forget them?"):
            echo("(nothing forgotten)", ctx.out)
            return
    removed = c.forget(target)
    if not removed:
        echo(f"(no memory matches {safe(arg, one_line=True)!r})", ctx.out)
    else:
        echo(f"Forgot {len(removed)}:", ctx.out)
        _print_items(ctx.out, removed)


def _export(ctx: CommandContext, arg: str) -> None:
    c = ctx.companion
    words = arg.split(" ")
    force = "--force" in (words[0], words[-1])
    if force:
        arg = " ".join(words[1:] if words[0] == "--force" else words[:-1]).strip()
    if arg:
        path = Path(arg).expanduser()
    else:
        exports = ctx.home / "exports"
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name = re.sub(r"[^\w.@+-]", "_", c.user).lstrip(".-") or "user"
        path = exports / f"{name}-{stamp}.json"
        if path.parent != exports:  # never outside exports/ (the name has no separator)
            raise InputError(f"cannot export user {safe(c.user, one_line=True)!r} by name")
    try:
        write_private(path, to_json(c.export()), force=force)
    except InputError as exc:
        if isinstance(exc.__cause__, FileExistsError):
            raise InputError(f"{path} already exists; /export {arg} --force replaces it") from exc
        raise
    echo(f"(exported to {path})", ctx.out)


def _retry(ctx: CommandContext) -> None:
    """Another reply to the user's last message, shown like any reply (SillyTavern's swipe)."""
    c = ctx.companion
    reply = c.retry()
    ctx.show(reply)
    if reply.result is not None:  # stored (in full, or interrupted) in place of the old one
        count = len(c.swipes) + 1
        echo(f"(reply {count} of {count}; /retry for another)", ctx.err)


def run_command(ctx: CommandContext, line: str) -> str | None:
    """Run one slash command; returns ``"quit"`` when the chat should end."""
    name, _, arg = line.strip().partition(" ")
    arg = arg.strip()
    c = ctx.companion
    try:
        if name in ("/quit", "/exit", "/bye"):
            return "quit"
        if name == "/help":
            echo(HELP, ctx.out)
        elif name == "/memories":
            items = c.memories()
            if not items:
                echo("(nothing remembered yet)", ctx.out)
            _print_items(ctx.out, items)
        elif name == "/forget":
            _forget(ctx, arg)
        elif name == "/persona":
            if arg:
                c.switch_persona(load_persona(arg, user_dirs=[ctx.home / "personas"]))
                echo(f"(now talking with {safe(c.persona.name, one_line=True)})", ctx.out)
            else:
                p = c.persona
                first = p.description.strip().splitlines()[0] if p.description.strip() else ""
                echo(f"{safe(p.name, one_line=True)}: {first}", ctx.out)
        elif name == "/mood":
            echo(c.mood(), ctx.out)
        elif name == "/retry":
            _retry(ctx)
        elif name == "/new":
            ctx.show(c.new_session())
        elif name == "/export":
            _export(ctx, arg)
        elif name in AGENDA_COMMANDS:
            agenda_command(ctx.companion, name, arg, ctx.out)
        else:
            echo(f"(unknown command {safe(name, one_line=True)[:80]}; try /help)", ctx.err)
    except CompanionError as exc:
        echo(f"(error: {exc})", ctx.err)
    except OSError as exc:
        echo(f"(error: {exc.strerror or exc}: {exc.filename or ''})", ctx.err)
    return None
