"""When she may speak first: the policy, as pure functions of a clock reading.

Nothing here reads a file, the store or the time; the caller
(:mod:`companion.agenda.fire`) gathers the facts into a :class:`Situation`.

The rules, as the issue asks and as ``config/companion.toml`` documents them:

* A **reminder** is not unprompted: the user asked for it. It is given when
  due, whatever the hour (a reminder set for 23:30 inside quiet hours fires at
  23:30: they asked for that time), whether the user is typing or not (the
  terminal shows it above the line being typed), and with ``proactive = false``
  too. It does not count towards the day's limit.
* **Briefings, follow-ups and check-ins** are unprompted: never in quiet hours,
  never while the user is typing, at most ``max_unprompted_per_day`` a day (the
  user's local day), none at all with ``proactive = false``.
* A **briefing** is given once a day, when a session opens (the first one of
  the day outside quiet hours), and only when there is something to say.
* A **check-in** comes after ``checkin_after_minutes`` of silence from the user
  in an open chat, once per silence: after one, the next needs the user to
  speak again first. ``0`` turns check-ins off.
* A **follow-up** asks how a plan went, once, at least :data:`FOLLOW_UP_AFTER`
  after the plan's time: when a session opens, or in an open chat in place of
  a check-in (after the same silence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from companion.agenda.model import NoticeKind
from companion.errors import ConfigError

#: The kinds of notice that count as speaking unprompted.
UNPROMPTED: tuple[NoticeKind, ...] = ("briefing", "follow_up", "check_in")

#: How long after a plan's time she waits before asking how it went (the plan
#: itself takes a while: an interview at 10 is not over at 10:01).
FOLLOW_UP_AFTER = timedelta(hours=1)


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """``"22:00-08:00"`` as (start, end); ``""`` (or a start equal to its end) as None."""
    text = text.strip()
    if not text:
        return None
    try:
        first, last = text.split("-")
        start, end = time.fromisoformat(first.strip()), time.fromisoformat(last.strip())
    except ValueError as exc:
        raise ConfigError(f'quiet_hours must look like "22:00-08:00", not {text!r}') from exc
    return None if start == end else (start, end)


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings the policy reads (see :meth:`from_config`)."""

    zone: tzinfo
    proactive: bool = True
    quiet: tuple[time, time] | None = (time(22), time(8))
    max_unprompted_per_day: int = 4
    #: Silence before a check-in; ``None``: never.
    checkin_after: timedelta | None = timedelta(minutes=120)

    @classmethod
    def from_config(cls, config: Any, zone: tzinfo) -> Policy:
        """From a :class:`~companion.config.Config` (its agenda settings)."""
        minutes = int(getattr(config, "checkin_after_minutes", 120))
        return cls(
            zone=zone,
            proactive=bool(getattr(config, "proactive", True)),
            quiet=parse_quiet_hours(str(getattr(config, "quiet_hours", "22:00-08:00"))),
            max_unprompted_per_day=int(getattr(config, "max_unprompted_per_day", 4)),
            checkin_after=timedelta(minutes=minutes) if minutes > 0 else None,
        )

    def local(self, now: datetime) -> datetime:
        return now.astimezone(self.zone)

    def day(self, now: datetime) -> date:
        """The user's local date at ``now``."""
        return self.local(now).date()

    def day_start(self, now: datetime) -> datetime:
        """The start of the user's local day holding ``now`` (aware, in the zone)."""
        return datetime.combine(self.day(now), time(0), tzinfo=self.zone)

    def in_quiet_hours(self, now: datetime) -> bool:
        if self.quiet is None:
            return False
        start, end = self.quiet
        t = self.local(now).time().replace(tzinfo=None)
        if start < end:
            return start <= t < end
        return t >= start or t < end  # across midnight


@dataclass(frozen=True, slots=True)
class Situation:
    """What the policy needs to know at one moment.

    ``unprompted_today``: unprompted notices already given on the user's local
    day. ``last_user_at``: the user's last message in this conversation, or the
    session's start when they have not spoken yet (the silence is measured from
    it). ``checked_in_at``: her last check-in, if any.
    """

    now: datetime
    typing: bool = False
    unprompted_today: int = 0
    last_user_at: datetime | None = None
    checked_in_at: datetime | None = None
    briefed_today: bool = False


def may_speak(policy: Policy, kind: NoticeKind, s: Situation) -> bool:
    """Whether a notice of ``kind`` may be given now (a reminder always may)."""
    if kind == "reminder":
        return True
    return (
        policy.proactive
        and not s.typing
        and not policy.in_quiet_hours(s.now)
        and s.unprompted_today < policy.max_unprompted_per_day
    )


def room_today(policy: Policy, s: Situation) -> int:
    """How many more unprompted notices may be given now (0 when none may)."""
    if not may_speak(policy, "check_in", s):
        return 0
    return policy.max_unprompted_per_day - s.unprompted_today


def briefing_due(policy: Policy, s: Situation) -> bool:
    """A briefing at a session's opening: once a day, within the limits."""
    return not s.briefed_today and may_speak(policy, "briefing", s)


def silent_long_enough(policy: Policy, s: Situation) -> bool:
    """The user has been silent for the check-in time, and she has not checked in
    since they last spoke (one check-in per silence)."""
    if policy.checkin_after is None or s.last_user_at is None:
        return False
    if s.checked_in_at is not None and s.checked_in_at >= s.last_user_at:
        return False
    return s.now - s.last_user_at >= policy.checkin_after


def check_in_due(policy: Policy, s: Situation) -> bool:
    """A check-in (or a follow-up in its place) in an open chat, now."""
    return silent_long_enough(policy, s) and may_speak(policy, "check_in", s)


def part_of_day(local: datetime) -> str:
    """``morning``, ``afternoon``, ``evening`` or ``night`` for a local time."""
    hour = local.hour
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 18:
        return "afternoon"
    if 18 <= hour < 23:
        return "evening"
    return "night"
