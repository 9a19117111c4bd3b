"""Questions about the agenda: "what's on my agenda?", "what do I have
tomorrow?", "any reminders?". They are answered from the store, not by the
model, which would invent times: the answer lists the items in words.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from companion.agenda.model import AgendaItem
from companion.agenda.words import when_words

_SPAN = r"(?:today|tomorrow|tonight|this\s+week(?:end)?|next\s+week|this\s+weekend)"
_QUESTION = re.compile(
    r"\bwhat(?:'s|\s+is|\s+are|\s+was)?\s+(?:on\s+)?my\s+"
    r"(?:agenda|schedule|calendar|reminders|plans|to-?do(?:\s+list)?)\b"
    r"|\bwhat(?:'s|\s+is)\s+(?:on\s+)?(?:the\s+)?(?:agenda|schedule)\b(?!\s+for\s+you)"
    r"|\bwhat(?:'s|\s+is)\s+coming\s+up\b(?!\s+(?:for|with)\s+you)"
    r"|\bwhat\s+(?:do\s+i\s+have|have\s+i\s+got|am\s+i\s+doing)\s+"
    rf"(?:(?:on|planned|scheduled|coming\s+up)\s+)?(?:for\s+)?{_SPAN}"
    r"|\bwhat\s+(?:do\s+i\s+have|have\s+i\s+got)\s+(?:planned|scheduled|coming\s+up)\b"
    r"|\bwhat\s+(?:do\s+i\s+have|have\s+i\s+got|is\s+there|'s\s+there)\s+(?:on|in)\s+my\s+"
    r"(?:agenda|schedule|calendar|diary|plate)\b"
    r"|\bany\s+reminders\b"
    r"|\b(?:show\s+(?:me\s+)?my|list\s+my|read\s+me\s+my)\s+(?:reminders|agenda|schedule|plans)\b"
    rf"|\bam\s+i\s+(?:busy|free)\s+{_SPAN}"
    r"|\bwhat\s+did\s+i\s+ask\s+you\s+to\s+remind\s+me\b",
    re.IGNORECASE,
)
#: How many items an answer names at most.
MOST = 8


def is_agenda_question(text: str) -> bool:
    return len(text) < 300 and bool(_QUESTION.search(text))


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
