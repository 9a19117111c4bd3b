"""``companion remind --due``: give the reminders that are due, then exit.

For when no chat is open: a cron line or a systemd user timer runs it every
minute. Each due reminder is printed (one line), shown as a desktop
notification when ``notify-send`` exists, stored as her turn in the
conversation, and marked shown; nothing due prints nothing. The exit status is
0 either way (2 for an error, as every command). A reminder is given once: the
same occurrence is never printed by two runs, nor by a run and an open chat.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from companion.cli.output import echo
from companion.text import safe

if TYPE_CHECKING:  # the agenda is imported when the command runs, not to parse arguments
    from companion.agenda.proactive import Policy
    from companion.memory import Store

Clock = Callable[[], datetime]

#: The longest a desktop notification may take to be handed over (seconds).
NOTIFY_TIMEOUT = 5.0


def add_remind_parser(sub: Any) -> None:
    p = sub.add_parser(
        "remind",
        help="give the reminders due now and exit (for cron or a systemd timer)",
        description="Print the reminders that are due (and show them with notify-send "
                    "when it exists), mark them given, and exit. Nothing due: prints nothing.",
    )
    p.add_argument("--due", action="store_true", required=True,
                   help="give the reminders due now (the only action)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", help="whose reminders (default: the configured user)")
    who.add_argument("--all-users", action="store_true", dest="all_users",
                     help="the due reminders of every user in the store")
    p.add_argument("--config", help="config file (default: <data dir>/config.toml)")
    p.add_argument("--no-notify", action="store_true", dest="no_notify",
                   help="print only; no desktop notification")


def notify(title: str, text: str) -> None:
    """A desktop notification through ``notify-send``, when it exists (silent if not)."""
    program = shutil.which("notify-send")
    if program is None:
        return
    # no notification daemon, no display: the printed line is enough
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [program, "--app-name=companion", "--", title, text],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=NOTIFY_TIMEOUT, check=False,
        )


def give_due(
    store: Store,
    users: list[str],
    policy: Policy,
    clock: Clock,
    out: TextIO,
    *,
    desktop: bool = True,
    label_users: bool = False,
) -> int:
    """Claim, print, notify and mark the due reminders of ``users``; returns how many."""
    from companion.agenda.fire import Poller

    given = 0
    for user in users:
        poller = Poller(store, user, policy=policy, clock=clock, in_chat=False)
        notices = poller.due_notices()
        for notice in notices:
            prefix = f"{safe(user, one_line=True)}: " if label_users else ""
            echo(f"{prefix}{safe(notice.text, one_line=True)}", out)
            out.flush()
            if desktop:
                notify("Reminder", safe(notice.text, one_line=True))
        poller.delivered(notices)
        given += len(notices)
    return given


def run_remind(args: argparse.Namespace, *, clock: Clock | None = None,
               out: TextIO | None = None) -> int:
    from companion.agenda.proactive import Policy
    from companion.agenda.zone import user_zone
    from companion.config import load_config
    from companion.memory import Store
    from companion.paths import data_dir

    config = load_config(Path(args.config) if args.config else None, user=args.user)
    policy = Policy.from_config(config, user_zone(config))
    with Store.open(data_dir() / "companion.db") as store:
        users = store.users() if args.all_users else [config.user]
        give_due(store, users, policy, clock or (lambda: datetime.now(UTC)),
                 out if out is not None else sys.stdout, desktop=not args.no_notify,
                 label_users=args.all_users)
    return 0
