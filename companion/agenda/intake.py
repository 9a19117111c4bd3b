"""The agenda's part in a turn: a message that sets a reminder or tells a plan.

:class:`Intake` reads each user message with :func:`~companion.agenda.parse.find_item`
(no model involved). What it finds becomes an :class:`Entry`: the item to store
with the user's turn, the line for the turn's private note, the words the reply
starts with (a reminder's confirmation: the date and time said back come from
the item, not from the model), and the check that keeps the rest of the reply
from stating another time. A request that cannot be set as said (31 February,
a time already past, "at 7" said at 8 pm) gets a question back instead, and
the next message is read as its answer ("the morning", "7 pm", "tomorrow at 9").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from companion.agenda.model import Draft
from companion.agenda.parse import DEFAULT_TIME, find_item, find_times, parse_when
from companion.agenda.store import add_item
from companion.agenda.words import clock_words, when_words
from companion.errors import InputError
from companion.memory.store import Store

#: Where the reply's stated time may differ from the item's: a time "in 20
#: minutes" said back as "at 3:52 pm" may land a minute off.
_SLACK = timedelta(minutes=1)
_HAS_CLOCK = re.compile(
    r"\d\s*(?:am|pm|a\.m\.|p\.m\.)\b|\d:\d\d|\bnoon\b|\bmidnight\b|o'clock|\bat\s+\d{1,2}\b",
    re.IGNORECASE,
)
_HAS_SPAN = re.compile(r"\bin\s+(?:\w+\s+){0,2}(?:minutes?|mins?|hours?|hrs?)\b", re.IGNORECASE)
_HAS_DAY = re.compile(
    r"\b(?:today|tonight|tomorrow|tmrw|yesterday|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|jan\w*|feb\w*|mar\w*|apr\w*|may|jun\w*|jul\w*|aug\w*|sep\w*|oct\w*|"
    r"nov\w*|dec\w*|\d{1,2}(?:st|nd|rd|th)|\d{4}-\d\d-\d\d|\d{1,2}/\d{1,2})\b",
    re.IGNORECASE,
)

_SPACES = re.compile(r"\s+")
#: Words around an answer to her question ("the 28th then", "ok, 7 pm please").
_FILLER = re.compile(r"\b(?:then|instead|please|pls|ok(?:ay)?|sure|yes|yeah|make\s+it|"
                     r"let'?s\s+say|how\s+about)\b", re.IGNORECASE)
_MONTH = re.compile(r"\b(?:january|february|march|april|may|june|july|august|september|"
                    r"october|november|december)\b", re.IGNORECASE)
_EXPLICIT_CLOCK = re.compile(
    r"\d\s*(?:am|pm|a\.m\.|p\.m\.)|\d:\d\d|\bnoon\b|\bmidnight\b|\b(?:1[3-9]|2[0-3])\b",
    re.IGNORECASE,
)
_WEEKDAY = re.compile(r"\b(?:mon|tue|wed|thu|fri|sat|sun)\w*", re.IGNORECASE)
_DATE_WORDS = re.compile(
    r"\d{1,2}(?:st|nd|rd|th)\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\w*\s+\d"
    r"|\d\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|\d{4}-\d\d|\d/\d|"
    r"\btoday\b|\btomorrow\b|\btonight\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Templates:
    """The wording of ``[plans]`` in ``config/prompts.toml`` (names filled in)."""

    reminder_note: str
    plan_note: str
    reminder_prefill: str
    plan_prefill: str
    reminder_confirmation: str
    plan_confirmation: str
    question_again: str
    agenda_intro: str = ""
    agenda_intro_span: str = ""
    agenda_empty: str = ""
    agenda_empty_span: str = ""
    agenda_more: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    """What one user message put in (or asked about) the agenda."""

    draft: Draft
    #: For the turn's private note (empty for a question).
    note: str = ""
    #: The words her reply starts with.
    prefill: str = ""
    #: Her whole reply, when she must ask back instead (no model call).
    question: str = ""
    #: What she says instead of a reply that keeps stating another time.
    confirmation: str = ""

    def wrong_time(self, text: str, now: datetime) -> bool:
        """``text`` (part of her reply) states a date or time other than the item's."""
        when = self.draft.when
        if when is None or self.question:
            return False
        return states_other_time(text, when, now.astimezone(when.tzinfo),
                                 all_day=self.draft.all_day, repeats=self.draft.rrule is not None)


def states_other_time(
    text: str, when: datetime, now: datetime, *, all_day: bool = False, repeats: bool = False
) -> bool:
    """Whether ``text`` names a day or a clock time that is not ``when``'s.

    Only what the text says is compared: a clock time with the item's time of
    day (a bare "at 10" with either reading of it), a day with its date (a
    weekday alone with the item's weekday, since "on Tuesday" said on Monday of
    the week before means the item's Tuesday; nothing for a recurring item,
    whose days are many), "in 20 minutes" with the moment itself. Parts of the
    day ("in the morning") are not compared.
    """
    for phrase, said in find_times(text, now):
        if _HAS_SPAN.search(phrase):
            if abs(said - when) > _SLACK:
                return True
            continue
        if _HAS_CLOCK.search(phrase) and not all_day and _other_clock(phrase, said, when):
            return True
        if not repeats and _HAS_DAY.search(phrase) and _other_day(phrase, said, when):
            return True
    return False


def _other_clock(phrase: str, said: datetime, when: datetime) -> bool:
    if said.minute != when.minute:
        return True
    if _EXPLICIT_CLOCK.search(phrase):
        return said.hour != when.hour
    return said.hour % 12 != when.hour % 12  # "at 10": ten in the morning or the evening


def _other_day(phrase: str, said: datetime, when: datetime) -> bool:
    if said.date() == when.date():
        return False
    weekday_only = _WEEKDAY.search(phrase) and not _DATE_WORDS.search(phrase)
    near = abs((said.date() - when.date()).days) <= 14
    return not (weekday_only and near and said.weekday() == when.weekday())


class Intake:
    """Reads the agenda out of a user's messages, for one user in one zone."""

    def __init__(self, zone: Callable[[], tzinfo], templates: dict[str, str]) -> None:
        self._zone = zone
        self._templates = Templates(**templates)
        self._asked: Draft | None = None

    def read(self, text: str, now: datetime) -> Entry | None:
        """The agenda entry ``text`` makes at ``now`` (UTC), or None."""
        local = now.astimezone(self._zone())
        asked, self._asked = self._asked, None
        if asked is not None and (answer := self._answer(asked, text, local)) is not None:
            return answer
        draft = find_item(text, local)
        if draft is None:
            return None
        return self._entry(draft, local)

    def _answer(self, asked: Draft, text: str, now: datetime) -> Entry | None:
        """The reply to her question about ``asked``: a new time for it, or None
        (the message was about something else)."""
        said = _FILLER.sub(" ", text).strip(" .!,")
        phrases = [said, f"on {said}"]
        month = _MONTH.search(asked.phrase)
        if month and not _MONTH.search(said):  # "the 28th then", asked about 31 February
            phrases.insert(0, f"on {said} of {month.group()}")
        if asked.phrase:
            phrases.append(f"{asked.phrase} {said}")
        for phrase in phrases:
            try:
                when, all_day, rrule = parse_when(phrase, now)
            except InputError:
                continue
            if asked.kind == "reminder" and all_day:  # a day alone: in its morning
                when, all_day = when.replace(hour=DEFAULT_TIME.hour, minute=0), False
            return self._entry(
                replace(asked, when=when, all_day=all_day, rrule=rrule or asked.rrule,
                        question=None),
                now,
            )
        return None

    def _entry(self, draft: Draft, now: datetime) -> Entry:
        t = self._templates
        if draft.question or draft.when is None:
            self._asked = draft
            return Entry(draft, question=draft.question or fill_what(t.question_again, draft))
        if draft.when <= now and draft.rrule is None and not draft.all_day:
            self._asked = draft
            return Entry(draft, question=fill_what(t.question_again, draft))
        said = when_words(draft.when, now, all_day=draft.all_day, rrule=draft.rrule)
        if _HAS_SPAN.search(draft.phrase) and draft.rrule is None:  # "in 20 minutes"
            span = _SPACES.sub(" ", draft.phrase.strip()).lower()
            said = f"{span} (at {clock_words(draft.when)})"
        full = f"{said} ({draft.when:%A %Y-%m-%d}" + (
            ")" if draft.all_day else f", {clock_words(draft.when)})"
        )
        kind = "reminder" if draft.kind == "reminder" else "plan"
        note, prefill, confirmation = (
            getattr(t, f"{kind}_{part}").replace("{what}", draft.what).replace("{when}", words)
            for part, words in (("note", full), ("prefill", said), ("confirmation", said))
        )
        return Entry(draft, note=note, prefill=_capital(prefill),
                     confirmation="" if prefill else _capital(confirmation))


def file_entry(
    store: Store, user_id: str, entry: Entry, zone: ZoneInfo, now: datetime, turn_id: int
) -> None:
    """Store what ``entry`` set, taken from the user's turn ``turn_id``."""
    if entry.question or entry.draft.when is None:
        return
    add_item(store, user_id, entry.draft, tz=zone.key, now=now, source_turn_id=turn_id)


def fill_what(template: str, draft: Draft) -> str:
    return template.replace("{what}", draft.what)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
