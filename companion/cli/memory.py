"""``companion memory list|search|show|edit|pin|forget|export|import``, from the shell.

Ids: a fact is ``12``, a session summary ``s3``, a stored message ``t40``
(``search`` and ``show`` print them).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from companion.cli.output import echo, emit_json
from companion.config import load_config
from companion.errors import InputError
from companion.memory import LongTermMemory, Store
from companion.memory.transfer import read_export
from companion.paths import data_dir
from companion.text import parse_id, safe
from companion.types import MemoryItem


def label(item: MemoryItem) -> str:
    """The id a user types to name ``item``: 12, s3 or t40."""
    prefix = {"summary": "s", "episode": "t"}.get(item.kind, "")
    return f"{prefix}{item.id}"


def line(item: MemoryItem) -> str:
    pin = " (pinned)" if item.pinned else ""
    return (f"[{label(item)}] {safe(item.text, one_line=True)}  "
            f"({item.kind}, {item.created_at:%Y-%m-%d}){pin}")


def parse_target(text: str) -> int | str:
    """A fact id as an int; a summary (``s3``) or message (``t40``) id as it is; else the
    words. Raises :class:`InputError` for an id too large to exist."""
    number = parse_id(text)
    if number is not None:
        return number
    text = text.strip()
    if re.fullmatch(r"[st][0-9]+", text):
        parse_id(text[1:])  # too large: one line, not an overflow
        return text
    return text


def is_id(target: int | str) -> bool:
    """Whether ``target`` (from :func:`parse_target`) names one memory rather than words."""
    return isinstance(target, int) or re.fullmatch(r"[st][0-9]+", target) is not None


def _find(memory: LongTermMemory, user: str, text: str) -> MemoryItem:
    target = parse_target(text)
    if isinstance(target, str) and target.startswith("t") and is_id(target):
        turn = memory.store.turn(int(target[1:]))
        if turn is not None and turn.user_id == user:
            from companion.memory.recall import load_items

            with memory.store.reading() as conn:
                return load_items(conn, user, [("turn", turn.id)])[("turn", turn.id)]
    for item in memory.items(user) + memory.history(user):
        if label(item) == str(target):
            return item
    raise InputError(f"no memory {safe(text[:80], one_line=True)!r} for user {user!r} "
                     "(see: companion memory list)")


def run_memory(args: argparse.Namespace) -> int:
    user = load_config(None, user=args.user).user
    with Store.open(data_dir() / "companion.db") as store:
        action = args.memory_command
        light = action in ("list", "show", "pin", "export")  # no model needed
        memory = LongTermMemory(store, embedder=None if light else "default")
        items: list[MemoryItem] = []
        if action == "list":
            items = memory.items(user)
        elif action == "search":
            items = memory.recall(user, args.query, limit=args.limit, budget_tokens=10**6)
        elif action == "show":
            item = _find(memory, user, args.id)
            echo(line(item))
            for turn in memory.sources(user, item):
                echo(f"  from [t{turn.id}] {turn.created_at:%Y-%m-%d %H:%M} {turn.role}: "
                     f"{safe(turn.content, one_line=True)}")
            old = [h for h in memory.history(user) if h.kind == item.kind and h.id != item.id
                   and item.kind not in ("episode", "summary")]
            for h in old:
                echo(f"  history: [{h.id}] {safe(h.text, one_line=True)} "
                     f"({h.created_at:%Y-%m-%d})")
            return 0
        elif action == "edit":
            fact_id = parse_id(args.id)
            if fact_id is None:
                raise InputError("only facts can be edited (give a fact id such as 12)")
            edited = memory.edit(user, fact_id, args.text)
            if edited is None:
                raise InputError(f"no fact {args.id} for user {user!r}")
            items = [edited]
        elif action == "pin":
            target = parse_target(args.id)
            if not is_id(target) or str(target).startswith("t"):
                raise InputError("give a fact id (12) or a summary id (s3) to pin")
            pinned = memory.pin(user, target, not args.off)
            if pinned is None:
                raise InputError(f"no fact or summary {args.id} for user {user!r}")
            items = [pinned]
        elif action == "forget":
            removed = memory.forget_report(user, parse_target(args.target))
            echo(f"Forgot: {removed.describe()}.")
            items = removed.items
        elif action == "import":
            counts = memory.import_data(user, read_export(Path(args.file)))
            echo("Imported " + ", ".join(f"{n} {k}" for k, n in counts.items())
                  + f" for user {user!r}.")
            return 0
        else:
            emit_json(store.export_user(user), args.output, overwrite=args.force)
            return 0
        for item in items:
            echo(line(item))
    return 0
