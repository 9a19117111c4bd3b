"""``companion memory list|search|show|edit|pin|forget|export|import``, from the shell.

Ids: a fact is ``12``, a session summary ``s3``, a stored message ``t40``
(``search`` and ``show`` print them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from companion.cli.output import emit_json
from companion.config import load_config
from companion.errors import InputError
from companion.memory import LongTermMemory, Store
from companion.paths import data_dir
from companion.types import MemoryItem


def label(item: MemoryItem) -> str:
    """The id a user types to name ``item``: 12, s3 or t40."""
    prefix = {"summary": "s", "episode": "t"}.get(item.kind, "")
    return f"{prefix}{item.id}"


def line(item: MemoryItem) -> str:
    pin = " (pinned)" if item.pinned else ""
    return f"[{label(item)}] {item.text}  ({item.kind}, {item.created_at:%Y-%m-%d}){pin}"


def _target(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _find(memory: LongTermMemory, user: str, target: str) -> MemoryItem:
    if target.startswith("t") and target[1:].isdigit():
        turn = memory.store.turn(int(target[1:]))
        if turn is not None and turn.user_id == user:
            from companion.memory.recall import load_items

            with memory.store.reading() as conn:
                return load_items(conn, user, [("turn", turn.id)])[("turn", turn.id)]
    for item in memory.items(user) + memory.history(user):
        if label(item) == target:
            return item
    raise InputError(f"no memory {target!r} for user {user!r} (see: companion memory list)")


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
            print(line(item))
            for turn in memory.sources(user, item):
                print(f"  from [t{turn.id}] {turn.created_at:%Y-%m-%d %H:%M} {turn.role}: "
                      f"{turn.content}")
            old = [h for h in memory.history(user) if h.kind == item.kind and h.id != item.id
                   and item.kind not in ("episode", "summary")]
            for h in old:
                print(f"  history: [{h.id}] {h.text} ({h.created_at:%Y-%m-%d})")
            return 0
        elif action == "edit":
            if not args.id.isdigit():
                raise InputError("only facts can be edited (give a fact id such as 12)")
            edited = memory.edit(user, int(args.id), args.text)
            if edited is None:
                raise InputError(f"no fact {args.id} for user {user!r}")
            items = [edited]
        elif action == "pin":
            pinned = memory.pin(user, _target(args.id), not args.off)
            if pinned is None:
                raise InputError(f"no fact or summary {args.id} for user {user!r}")
            items = [pinned]
        elif action == "forget":
            removed = memory.forget_report(user, _target(args.target))
            print(f"Forgot: {removed.describe()}.")
            items = removed.items
        elif action == "import":
            try:
                data = json.loads(Path(args.file).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(f"cannot read {args.file}: {exc}") from exc
            counts = memory.import_data(user, data)
            print("Imported " + ", ".join(f"{n} {k}" for k, n in counts.items())
                  + f" for user {user!r}.")
            return 0
        else:
            emit_json(store.export_user(user), args.output)
            return 0
        for item in items:
            print(line(item))
    return 0
