"""The agenda's commands in the terminal chat: ``/agenda``, ``/done N``,
``/snooze N 10m``, ``/cancel N``.

``N`` is the number ``/agenda`` shows (the item's id); items are shown as
``companion agenda list`` shows them. Each answers in one line; a bad number
or duration is one line too (:class:`~companion.errors.InputError`, printed by
the chat), and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from companion.cli.output import echo
from companion.errors import InputError
from companion.text import parse_id

if TYPE_CHECKING:
    from companion.agenda.model import AgendaItem
    from companion.dialog import Companion

AGENDA_COMMANDS = ("/agenda", "/done", "/snooze", "/cancel")

_USAGE = {
    "/done": "/done N (N: the number /agenda shows)",
    "/cancel": "/cancel N (N: the number /agenda shows)",
    "/snooze": "/snooze N 10m (N: the number /agenda shows; 10m, 2h, 1d, '30 minutes')",
}


def _number(name: str, arg: str) -> tuple[int, str]:
    first, _, rest = arg.strip().partition(" ")
    number = parse_id(first)
    if number is None:
        raise InputError(f"usage: {_USAGE[name]}")
    return number, rest.strip()


def _line(c: Companion, item: AgendaItem) -> str:
    """``item`` as ``companion agenda list`` prints it."""
    from companion.agenda import store as agenda
    from companion.cli.agenda import line

    return line(item, agenda.fired(c.store, c.user, item.id), c.zone())


def agenda_command(c: Companion, name: str, arg: str, out: TextIO) -> None:
    """Run one of :data:`AGENDA_COMMANDS`."""
    from companion.agenda import store as agenda

    if name == "/agenda":
        if arg:
            raise InputError("usage: /agenda (with nothing after it)")
        items = agenda.list_items(c.store, c.user)
        if not items:
            echo("(nothing in your agenda; try \"remind me to ...\")", out)
        for item in items:
            echo(_line(c, item), out)
        return
    number, rest = _number(name, arg)
    now = c.clock()
    if name == "/snooze":
        if not rest:
            raise InputError(f"usage: {_USAGE[name]}")
        from companion.agenda.parse import parse_duration

        item = agenda.snooze_by(c.store, c.user, number, parse_duration(rest), now)
        echo("Snoozed: " + _line(c, item), out)
        return
    if rest:
        raise InputError(f"usage: {_USAGE[name]}")
    done = name == "/done"
    item = agenda.set_status(c.store, c.user, number, "done" if done else "cancelled", now)
    echo(("Done: " if done else "Cancelled: ") + _line(c, item), out)
