"""The words of her notices: reminders, the briefing, follow-ups, check-ins.

The sentences are data (``[agenda]`` in ``config/prompts.toml``); this module
fills them in, deterministically: the same items at the same time give the same
text. Times are said in the user's zone, as her confirmations say them
(:mod:`companion.agenda.words`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from companion.agenda.model import AgendaItem, Fire, Notice
from companion.agenda.proactive import part_of_day
from companion.agenda.words import clock_words, day_words, when_words
from companion.config import read_toml
from companion.errors import ConfigError
from companion.paths import package_data

#: A reminder shown later than this after its time says when it was due.
LATE_AFTER = timedelta(minutes=2)

_SOURCE = "config/prompts.toml"


@dataclass(frozen=True, slots=True)
class Wording:
    reminder: str
    reminder_late: str
    briefing_today: str
    briefing_overdue: str
    follow_up: str
    check_in: tuple[str, ...]


@functools.cache
def load_wording() -> Wording:
    """The ``[agenda]`` texts of ``config/prompts.toml`` (read once)."""
    data = read_toml(package_data("config", "prompts.toml").read_text(encoding="utf-8"), _SOURCE)
    section = data.get("agenda", {})

    def text(key: str) -> str:
        value = section.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"missing text [agenda].{key}", path=_SOURCE)
        return value

    lines = section.get("check_in")
    if not isinstance(lines, list) or not lines or not all(isinstance(x, str) for x in lines):
        raise ConfigError("[agenda].check_in must be a list of texts", path=_SOURCE)
    return Wording(
        reminder=text("reminder"),
        reminder_late=text("reminder_late"),
        briefing_today=text("briefing_today"),
        briefing_overdue=text("briefing_overdue"),
        follow_up=text("follow_up"),
        check_in=tuple(lines),
    )


def local_when(when: datetime, now: datetime, zone: tzinfo, *, all_day: bool = False) -> str:
    """``at 3 pm`` (today), ``yesterday at 3 pm``, ``on Monday 14 December``: in
    the user's zone (an all-day item keeps its own day)."""
    local_now = now.astimezone(zone)
    if all_day:
        return day_words(when.replace(tzinfo=None), local_now.replace(tzinfo=None))
    local = when.astimezone(zone)
    if local.date() == local_now.date():
        return f"at {clock_words(local)}"
    return when_words(local, local_now)


def reminder_notice(fire: Fire, now: datetime, zone: tzinfo, words: Wording) -> Notice:
    """``Reminder: call Maya.`` (with when it was due, when shown late)."""
    item = fire.item
    if now - fire.due_at > LATE_AFTER:
        when = local_when(fire.due_at, now, zone, all_day=item.all_day)
        text = words.reminder_late.format(what=item.what, when=when)
    else:
        text = words.reminder.format(what=item.what)
    return Notice("reminder", text, (item.id,))


def briefing_notice(
    today: list[tuple[AgendaItem, datetime]],
    overdue: list[AgendaItem],
    zone: tzinfo,
    words: Wording,
) -> Notice | None:
    """``Today: 3 pm dentist. Still open from before: call Maya.``; None when
    there is nothing to say."""
    parts: list[str] = []
    ids: list[int] = []
    if today:
        entries = [
            item.what if item.all_day else f"{clock_words(at.astimezone(zone))} {item.what}"
            for item, at in today
        ]
        parts.append(words.briefing_today.format(items="; ".join(entries)))
        ids += [item.id for item, _ in today]
    if overdue:
        parts.append(words.briefing_overdue.format(items="; ".join(i.what for i in overdue)))
        ids += [item.id for item in overdue]
    if not parts:
        return None
    return Notice("briefing", " ".join(parts), tuple(dict.fromkeys(ids)))


def follow_up_notice(item: AgendaItem, now: datetime, zone: tzinfo, words: Wording) -> Notice:
    """``How did it go: interview (yesterday at 10 am)?``"""
    when = local_when(item.when, now, zone, all_day=item.all_day)
    return Notice("follow_up", words.follow_up.format(what=item.what, when=when), (item.id,))


def check_in_notice(now: datetime, zone: tzinfo, words: Wording) -> Notice:
    """One of the check-in lines, picked by the day (the same all day long)."""
    local = now.astimezone(zone)
    line = words.check_in[local.date().toordinal() % len(words.check_in)]
    return Notice("check_in", line.format(part_of_day=part_of_day(local)))
