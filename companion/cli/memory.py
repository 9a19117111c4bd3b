"""``companion memory list|search|forget|export``: what she remembers, from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from companion.config import load_config
from companion.memory import SQLiteMemory, Store
from companion.paths import data_dir


def run_memory(args: argparse.Namespace) -> int:
    user = load_config(None, user=args.user).user
    with Store.open(data_dir() / "companion.db") as store:
        memory = SQLiteMemory(store)
        action = args.memory_command
        if action == "list":
            items = memory.items(user)
        elif action == "search":
            items = memory.recall(user, args.query, limit=20)
        elif action == "forget":
            target = int(args.target) if args.target.isdigit() else args.target
            with store.transaction():
                items = memory.forget(user, target)
            print(f"Forgot {len(items)} item(s):" if items else "Nothing matched.")
        else:
            data = json.dumps(store.export_user(user), indent=2, ensure_ascii=False)
            if args.output:
                Path(args.output).write_text(data + "\n", encoding="utf-8")
                print(f"Wrote {args.output}", file=sys.stderr)
            else:
                print(data)
            return 0
        for item in items:
            print(f"[{item.id}] {item.text}  ({item.kind}, {item.created_at:%Y-%m-%d})")
    return 0
