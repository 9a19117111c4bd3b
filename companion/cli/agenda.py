"""``companion agenda [list|add|done|snooze|cancel|export|import]``, from the shell.

Items are numbered by their id (``done 3``). Times are shown in the user's
zone (the config's ``timezone``, else the system's); an all-day item keeps
its own day. ``export`` writes iCalendar (a private file, never replacing one
without ``--force``; standard output without ``-o``); ``import`` reads one
from Thunderbird, GNOME Calendar or Google Calendar, all of it or nothing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from companion.cli.output import echo, to_json, write_private
from companion.errors import InputError
from companion.text import parse_id, safe

ACTIONS = ("list", "add", "done", "snooze", "cancel", "export", "import")


def add_agenda_parser(sub: Any) -> None:
    p = sub.add_parser("agenda", help="see, add, finish, snooze, export or import reminders "
                                      "and plans")
    asub = p.add_subparsers(dest="agenda_command", metavar="ACTION")
    ls = asub.add_parser("list", help="what is ahead (numbered by id)")
    ls.add_argument("--all", action="store_true", help="done and cancelled items too")
    ls.add_argument("--json", action="store_true", help="as JSON")
    add = asub.add_parser("add", help='add an item: add "call Maya" "friday at 6", or '
                                      'add "remind me to call Maya friday at 6"')
    add.add_argument("what")
    add.add_argument("when", nargs="?", help="when (read like she reads it); "
                                             "omitted: read from WHAT")
    add.add_argument("--plan", action="store_true",
                     help="a plan (she asks how it went) rather than a reminder")
    done = asub.add_parser("done", help="mark an item done (a recurring one: this time)")
    done.add_argument("id")
    snooze = asub.add_parser("snooze", help="remind again later: snooze 3 10m")
    snooze.add_argument("id")
    snooze.add_argument("duration", help="10m, 2h, 1d, '30 minutes'")
    cancel = asub.add_parser("cancel", help="cancel an item (a recurring one: for good)")
    cancel.add_argument("id")
    exp = asub.add_parser("export", help="the agenda as an iCalendar (.ics) file")
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.add_argument("--force", action="store_true", help="replace the file if it exists")
    imp = asub.add_parser("import", help="add the events of an iCalendar (.ics) file")
    imp.add_argument("file")
    for q in (p, ls, add, done, snooze, cancel, exp, imp):
        q.add_argument("--user", default=argparse.SUPPRESS if q is not p else None,
                       help="whose agenda (default: the configured user)")
        q.add_argument("--config", default=argparse.SUPPRESS if q is not p else None,
                       help="config file (default: <data dir>/config.toml)")


def _id(text: str) -> int:
    number = parse_id(text)
    if number is None:
        raise InputError(f"not an agenda item number: {safe(text[:40], one_line=True)!r} "
                         "(see: companion agenda list)")
    return number


def _when_text(when: datetime, zone: tzinfo, all_day: bool) -> str:
    if all_day:
        return f"{when:%a %d %b %Y} (all day)"
    return f"{when.astimezone(zone):%a %d %b %Y %H:%M}"


def line(item: Any, fires: list[datetime], zone: tzinfo) -> str:
    """One item as ``list`` prints it."""
    from companion.agenda.words import repeat_words

    parts = [f"[{item.id}] {_when_text(item.when, zone, item.all_day)}",
             safe(item.what, one_line=True)]
    if item.rrule:
        parts.append(f"({repeat_words(item.rrule, item.when, all_day=True)})")
    state = f"{item.kind}, {item.status}"
    if item.status == "snoozed" and item.snoozed_until is not None:
        state += f" until {item.snoozed_until.astimezone(zone):%a %H:%M}"
    if fires:
        state += f", fired {fires[-1].astimezone(zone):%d %b %H:%M}"
        if len(fires) > 1:
            state += f" ({len(fires)} times)"
    return "  ".join(parts) + f"  ({state})"


def _json(item: Any, fires: list[datetime]) -> dict[str, Any]:
    return {
        "id": item.id, "what": item.what, "kind": item.kind, "status": item.status,
        "when": item.when.isoformat(), "tz": str(item.when.tzinfo), "all_day": item.all_day,
        "rrule": item.rrule,
        "snoozed_until": item.snoozed_until.isoformat() if item.snoozed_until else None,
        "fired": [f.isoformat() for f in fires], "uid": item.uid,
    }


def _read(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return data


def run_agenda(args: argparse.Namespace) -> int:
    from companion.agenda import store as agenda
    from companion.agenda.ics import MAX_BYTES, from_ics, to_ics
    from companion.agenda.model import STATUSES, Draft
    from companion.agenda.parse import find_item, parse_duration, parse_when
    from companion.agenda.zone import user_zone
    from companion.config import load_config
    from companion.memory import Store
    from companion.paths import data_dir

    config = load_config(Path(args.config) if args.config else None, user=args.user)
    user, zone = config.user, user_zone(config)
    now = datetime.now(zone)
    action = args.agenda_command or "list"
    # What the user typed is read before the store is opened: a mistake touches nothing.
    if action == "add":
        if args.when is not None:
            when, all_day, rule = parse_when(args.when, now)
            draft = Draft(args.what, when, "plan" if args.plan else "reminder",
                          all_day=all_day, rrule=rule)
        else:
            found = find_item(args.what, now)
            if found is None:
                raise InputError("no date or time found in that; give it apart: "
                                 'companion agenda add "call Maya" "friday at 6"')
            draft = found
    item_id = _id(args.id) if action in ("done", "cancel", "snooze") else 0
    wait = parse_duration(args.duration) if action == "snooze" else None
    found_items = from_ics(_read(Path(args.file).expanduser(), MAX_BYTES),
                           default_tz=zone.key) if action == "import" else []
    with Store.open(data_dir() / "companion.db") as store:
        if action == "list":
            statuses = STATUSES if getattr(args, "all", False) else agenda.ACTIVE
            items = agenda.list_items(store, user, statuses=statuses)
            fired = {i.id: agenda.fired(store, user, i.id) for i in items}
            if getattr(args, "json", False):
                print(to_json([_json(i, fired[i.id]) for i in items]))
            elif not items:
                echo("Nothing in the agenda." if statuses == STATUSES else
                     "Nothing ahead in the agenda (see all: companion agenda list --all).")
            for item in [] if getattr(args, "json", False) else items:
                echo(line(item, fired[item.id], zone))
            return 0
        if action == "add":
            item = agenda.add_item(store, user, draft, tz=zone.key, now=now)
            echo("Added: " + line(item, agenda.fired(store, user, item.id), zone))
            return 0
        if action in ("done", "cancel"):
            item = agenda.set_status(store, user, item_id,
                                     "done" if action == "done" else "cancelled", now)
            echo(("Done: " if action == "done" else "Cancelled: ")
                 + line(item, agenda.fired(store, user, item.id), zone))
            return 0
        if action == "snooze":
            assert wait is not None
            item = agenda.snooze_by(store, user, item_id, wait, now)
            echo("Snoozed: " + line(item, agenda.fired(store, user, item.id), zone))
            return 0
        if action == "export":
            data = to_ics(agenda.list_items(store, user, statuses=STATUSES), now=now)
            if args.output:
                write_private(Path(args.output).expanduser(), data.decode("utf-8"),
                              force=args.force)
                echo(f"Wrote {args.output}", sys.stderr)
            elif sys.stdout.isatty():
                echo(data.decode("utf-8").replace("\r\n", "\n"))
            else:
                sys.stdout.flush()
                sys.stdout.buffer.write(data)
            return 0
        added = agenda.import_items(store, user, found_items, tz=zone.key, now=now)
        kept = len(found_items) - added
        echo(f"Imported {added} agenda item{'' if added == 1 else 's'} for user {user!r}"
             + (f" ({kept} already there)." if kept else "."))
    return 0
