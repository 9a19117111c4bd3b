"""The agenda's value types: an item, a parsed request, a notice she gives.

Plain data, no I/O. Times are aware ``datetime`` objects: ``AgendaItem.when``
is in the user's own time zone (so "every Monday at 9" stays at 9 across a
daylight-saving change); the store keeps it as UTC plus the zone's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

#: ``reminder``: the user asked to be reminded (fires at ``when``).
#: ``plan``: something the user said they will do ("my interview is next
#: Tuesday at 10"): it is in the agenda and the briefing, and once its time has
#: passed she asks how it went, once.
Kind = Literal["reminder", "plan"]
Status = Literal["pending", "done", "snoozed", "cancelled"]
STATUSES: tuple[Status, ...] = ("pending", "done", "snoozed", "cancelled")


@dataclass(frozen=True, slots=True)
class Draft:
    """What :func:`companion.agenda.parse.find_item` read in one message.

    ``when`` is aware, in the zone of the ``now`` it was given. ``all_day``:
    only a day was said ("the interview is on the 14th"); ``when`` is then the
    day's start. ``rrule`` is an RFC 5545 recurrence rule without ``DTSTART``
    ("FREQ=WEEKLY;BYDAY=MO"), or ``None``. ``question``: the message was a
    request that cannot be set as said (31 February, a time in the past, "at
    7" said at 8 pm); she asks it back instead of setting anything, and
    ``when`` is her best reading or ``None``.
    """

    what: str
    when: datetime | None
    kind: Kind
    all_day: bool = False
    rrule: str | None = None
    question: str | None = None
    #: The words the date and time were read from, as written ("on Friday at 6").
    phrase: str = ""


@dataclass(frozen=True, slots=True)
class AgendaItem:
    """One stored reminder or plan."""

    id: int
    what: str
    when: datetime
    kind: Kind
    status: Status = "pending"
    all_day: bool = False
    rrule: str | None = None
    source_turn_id: int | None = None
    created_at: datetime | None = None
    #: When a snoozed item fires again (``status == "snoozed"``).
    snoozed_until: datetime | None = None
    #: Set once she has asked how a past plan went.
    followed_up_at: datetime | None = None
    #: Its stable iCalendar UID (kept through export and import).
    uid: str = ""

    @property
    def next_time(self) -> datetime:
        """When it next fires: the snooze time when snoozed, else ``when``."""
        if self.status == "snoozed" and self.snoozed_until is not None:
            return self.snoozed_until
        return self.when


NoticeKind = Literal["reminder", "briefing", "follow_up", "check_in"]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something she says without being asked: a due reminder, the day's
    briefing, a question about how a plan went, a check-in after a silence.

    ``text`` is ready to show or speak; ``item_ids`` are the agenda items it is
    about (empty for a check-in).
    """

    kind: NoticeKind
    text: str
    item_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Fire:
    """One claimed occurrence of a reminder: ``item`` fired for ``due_at``.

    Claiming is what makes a reminder fire once (see
    :func:`companion.agenda.store.claim_due`); ``shown`` says whether it was
    already delivered.
    """

    item: AgendaItem
    due_at: datetime
    shown: bool = False
