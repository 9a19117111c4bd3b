"""Questions about the agenda: "what's on my agenda?", "what do I have
tomorrow?", "any reminders?". They are answered from the store, not by the
model, which would invent times: the answer lists the items in words.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from companion.agenda.model import AgendaItem
from companion.agenda.words import when_words

_QUESTION = re.compile(
    r"\bwhat(?:'s| is| do i have| have i got| are my| did i ask you to remind me)\b"
    r"[^.?!]{0,40}\b(?:agenda|schedule|calendar|reminders?|plans?|planned|coming up|"
    r"on (?:today|tomorrow|this week|next week)|(?:for|on) (?:today|tomorrow)"
    r"|this week|next week|to do)\b"
    r"|\b(?:any|my) reminders\b|\bshow (?:me )?my (?:agenda|reminders|schedule)\b"
    r"|\bwhat do i have (?:today|tomorrow|this week|next week|coming up)\b"
    r"|\bam i (?:busy|free) (?:today|tomorrow|this week|next week)\b",
    re.IGNORECASE,
)
_PAST = re.compile(r"\b(?:did|was|were|went|had)\b", re.IGNORECASE)
#: How many items an answer names at most.
MOST = 8


def is_agenda_question(text: str) -> bool:
    return len(text) < 300 and bool(_QUESTION.search(text)) and not _PAST.search(
        text.split("remind me")[0]
    )


def asked_span(text: str, now: datetime) -> tuple[datetime, datetime, str]:
    """The period a question is about, from ``now`` (local): today, tomorrow,
    this or next week; else the next 60 days. Returns (start, end, name)."""
    low = text.lower()
    midnight = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
    monday = midnight - timedelta(days=now.weekday())
    if "tomorrow" in low:
        return midnight + timedelta(days=1), midnight + timedelta(days=2), "tomorrow"
    if "today" in low or "tonight" in low:
        return now, midnight + timedelta(days=1), "today"
    if "next week" in low:
        return monday + timedelta(days=7), monday + timedelta(days=14), "next week"
    if "this week" in low or "week" in low:
        return now, monday + timedelta(days=7), "this week"
    return now, now + timedelta(days=60), ""


def answer(
    found: list[tuple[AgendaItem, datetime]], now: datetime, span: str, templates: dict[str, str]
) -> str:
    """Her answer: the items of ``found`` (occurrences in time order) in words."""
    if not found:
        key = "agenda_empty_span" if span else "agenda_empty"
        return templates[key].replace("{span}", span)
    lines = []
    for item, when in found[:MOST]:
        said = when_words(when, now, all_day=item.all_day)
        what = item.what if item.kind == "plan" else f"remind you to {item.what}"
        lines.append(f"{said[:1].upper()}{said[1:]}: {what}.")
    more = len(found) - MOST
    head = templates["agenda_intro_span" if span else "agenda_intro"].replace("{span}", span)
    tail = "\n" + templates["agenda_more"].replace("{n}", str(more)) if more > 0 else ""
    return head + "\n" + "\n".join(lines) + tail
