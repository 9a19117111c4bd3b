"""What she says now: due reminders, the day's briefing, follow-ups, check-ins.

A :class:`Poller` is asked, again and again (the open chat every half second,
the server with each reply, ``companion remind --due`` once a minute from cron),
for the notices to give now. Each answer is a list of :class:`Notice`; the
caller shows or speaks them, then calls :meth:`Poller.delivered`. So a
reminder's occurrence is claimed (a row in ``agenda_fires``: claiming twice is
impossible), delivered, then marked shown; a process that dies between the
claim and the mark leaves a claimed, unshown fire, which the next poll, in this
process or another, delivers (and a fire handed out but not yet marked is not
handed out again by the same poller).

A fire another process claimed a moment ago and has not marked shown yet is
left to it (it is showing it, or queued it behind a streaming reply); after
:data:`ADOPT_AFTER` without a mark, that process is taken to be gone, and the
fire is delivered here.

Every delivered notice is stored as an assistant turn of the conversation (she
knows she said it, the history shows it) and logged in ``agenda_notices``,
which is what the limits count: unprompted notices today, the day's briefing,
the last check-in. When to say what is :mod:`companion.agenda.proactive`'s
policy; the words are :mod:`companion.agenda.wording`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from companion.agenda import store as agenda
from companion.agenda.model import Fire, Notice, NoticeKind
from companion.agenda.proactive import (
    FOLLOW_UP_AFTER,
    UNPROMPTED,
    Policy,
    Situation,
    briefing_due,
    check_in_due,
    room_today,
)
from companion.agenda.wording import (
    Wording,
    briefing_notice,
    check_in_notice,
    follow_up_notice,
    load_wording,
    reminder_notice,
)
from companion.memory.codec import from_text, to_text
from companion.memory.store import Store
from companion.types import SessionInfo, Turn

Clock = Callable[[], datetime]

#: An unshown fire claimed this long ago by another process is delivered here.
ADOPT_AFTER = timedelta(minutes=2)


def log_notice(store: Store, user_id: str, kind: NoticeKind, now: datetime,
               turn_id: int | None) -> None:
    """Record that a notice of ``kind`` was given (what the limits count)."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO agenda_notices (user_id, kind, given_at, turn_id) VALUES (?, ?, ?, ?)",
            (user_id, kind, to_text(now), turn_id),
        )


def _count_since(store: Store, user_id: str, kinds: Iterable[str], since: datetime) -> int:
    kinds = tuple(kinds)
    marks = ", ".join("?" for _ in kinds)
    with store.reading() as conn:
        row = conn.execute(
            f"SELECT count(*) FROM agenda_notices WHERE user_id = ? AND kind IN ({marks})"
            " AND given_at >= ?",
            (user_id, *kinds, to_text(since)),
        ).fetchone()
    return int(row[0])


def _last_given(store: Store, user_id: str, kind: NoticeKind) -> datetime | None:
    with store.reading() as conn:
        row = conn.execute(
            "SELECT max(given_at) FROM agenda_notices WHERE user_id = ? AND kind = ?",
            (user_id, kind),
        ).fetchone()
    return from_text(row[0]) if row[0] is not None else None


def _last_user_turn(store: Store, user_id: str) -> datetime | None:
    with store.reading() as conn:
        row = conn.execute(
            "SELECT max(created_at) FROM turns WHERE user_id = ? AND role = 'user'", (user_id,)
        ).fetchone()
    return from_text(row[0]) if row[0] is not None else None


def _claimed_at(store: Store, fire: Fire) -> datetime | None:
    with store.reading() as conn:
        row = conn.execute(
            "SELECT claimed_at FROM agenda_fires WHERE item_id = ? AND due_at = ?",
            (fire.item.id, to_text(fire.due_at)),
        ).fetchone()
    return from_text(row[0]) if row is not None else None


def conversation_session(store: Store, user_id: str, now: datetime) -> int:
    """The session a notice given outside a chat goes into: the user's latest
    one, or a new (ended) one when they have none."""
    with store.reading() as conn:
        row = conn.execute(
            "SELECT max(id) FROM sessions WHERE user_id = ?", (user_id,)
        ).fetchone()
    if row[0] is not None:
        return int(row[0])
    with store.transaction():
        session = store.start_session(user_id, now)
        store.end_session(session.id, now)
    return session.id


@dataclass
class _Handed:
    """A notice handed out and not yet delivered, with what delivering it marks."""

    notice: Notice
    fires: list[Fire]


class Poller:
    """The notices for one user, now (see the module's documentation).

    ``session``: the open conversation the notices are said in, asked each
    time (it changes with ``/new``); None outside a chat: they go into the
    user's latest session. ``in_chat``: check-ins (and follow-ups in their
    place) are only for an open chat.
    """

    def __init__(
        self,
        store: Store,
        user_id: str,
        *,
        policy: Policy,
        clock: Clock,
        session: Callable[[], SessionInfo] | None = None,
        words: Wording | None = None,
        in_chat: bool = True,
    ) -> None:
        self.store = store
        self.user_id = user_id
        self.policy = policy
        self.clock = clock
        self.session = session
        self.words = words or load_wording()
        self.in_chat = in_chat
        self._handed: list[_Handed] = []

    # -- asking ------------------------------------------------------------------------

    def due_notices(self, now: datetime | None = None, *, typing: bool = False) -> list[Notice]:
        """The notices to give now: every due reminder (claimed here), and, in an
        open chat after a long silence, a follow-up or a check-in (within limits)."""
        now = now or self.clock()
        notices = self._reminders(now)
        if self.in_chat:
            s = self.situation(now, typing=typing)
            if check_in_due(self.policy, s):
                follow = self._follow_ups(now, limit=1)
                notices += follow or [self._hand(check_in_notice(now, self.policy.zone,
                                                                 self.words))]
        return notices

    def opening(self, now: datetime | None = None) -> list[Notice]:
        """What she says when a session opens: the day's briefing (once a day) and
        how past plans went, within the day's limit and outside quiet hours."""
        now = now or self.clock()
        s = self.situation(now)
        room = room_today(self.policy, s)
        notices: list[Notice] = []
        if room > 0 and briefing_due(self.policy, s):
            briefing = self._briefing(now)
            if briefing is not None:
                notices.append(self._hand(briefing))
                room -= 1
        if room > 0:
            notices += self._follow_ups(now, limit=room)
        return notices

    def situation(self, now: datetime, *, typing: bool = False) -> Situation:
        """The facts the policy reads, from the store."""
        start = self.policy.day_start(now)
        last_user = _last_user_turn(self.store, self.user_id)
        if self.session is not None:  # silence is counted from the session's start at most
            opened = self.session().started_at
            if last_user is None or last_user < opened:
                last_user = opened
        return Situation(
            now=now,
            typing=typing,
            unprompted_today=_count_since(self.store, self.user_id, UNPROMPTED, start),
            last_user_at=last_user,
            checked_in_at=self._last_check_in(now),
            briefed_today=_count_since(self.store, self.user_id, ("briefing",), start) > 0,
        )

    # -- delivering --------------------------------------------------------------------

    def delivered(self, notices: Iterable[Notice], now: datetime | None = None) -> list[Turn]:
        """``notices`` were shown or spoken: mark their fires shown, their plans
        followed up, and store each as her turn. Returns the stored turns."""
        now = now or self.clock()
        turns: list[Turn] = []
        for notice in notices:
            handed = next((h for h in self._handed if h.notice is notice), None)
            if handed is None:
                handed = next((h for h in self._handed if h.notice == notice), None)
            if handed is not None:
                self._handed.remove(handed)
            with self.store.transaction():
                if handed is not None and handed.fires:
                    agenda.mark_shown(self.store, self.user_id, handed.fires, now)
                if notice.kind == "follow_up":
                    agenda.mark_followed_up(self.store, self.user_id, list(notice.item_ids), now)
                session = (self.session().id if self.session is not None
                           else conversation_session(self.store, self.user_id, now))
                turn = self.store.add_turn(self.user_id, session, "assistant", notice.text, now)
                log_notice(self.store, self.user_id, notice.kind, now, turn.id)
            turns.append(turn)
        return turns

    def pending(self) -> list[Notice]:
        """Notices handed out and not yet delivered (e.g. queued behind a reply)."""
        return [h.notice for h in self._handed]

    # -- internals ---------------------------------------------------------------------

    def _hand(self, notice: Notice, fires: list[Fire] | None = None) -> Notice:
        self._handed.append(_Handed(notice, fires or []))
        return notice

    def _mine(self, fire: Fire) -> bool:
        return any(
            f.item.id == fire.item.id and f.due_at == fire.due_at
            for h in self._handed for f in h.fires
        )

    def _reminders(self, now: datetime) -> list[Notice]:
        fires = [f for f in agenda.claim_due(self.store, self.user_id, now) if not self._mine(f)]
        notices: list[Notice] = []
        for fire in fires:
            claimed = _claimed_at(self.store, fire)
            if claimed is not None and claimed < now and now - claimed < ADOPT_AFTER:
                continue  # another process claimed it a moment ago and is showing it
            notice = reminder_notice(fire, now, self.policy.zone, self.words)
            same = next((h for h in self._handed if h.notice == notice), None)
            if same is not None:  # two occurrences of one reminder: said once
                same.fires.append(fire)
                continue
            notices.append(self._hand(notice, [fire]))
        return notices

    def _follow_ups(self, now: datetime, *, limit: int) -> list[Notice]:
        items = agenda.follow_ups_due(self.store, self.user_id, now - FOLLOW_UP_AFTER)
        handed = {i for h in self._handed for i in h.notice.item_ids
                  if h.notice.kind == "follow_up"}
        items = [item for item in items if item.id not in handed][:limit]
        return [self._hand(follow_up_notice(item, now, self.policy.zone, self.words))
                for item in items]

    def _briefing(self, now: datetime) -> Notice | None:
        start = self.policy.day_start(now)  # what is still ahead today
        today = agenda.between(self.store, self.user_id, now, start + timedelta(days=1))
        overdue = [
            item for item in agenda.list_items(self.store, self.user_id)
            if item.kind == "reminder" and item.rrule is None and item.next_time < start
        ]
        return briefing_notice(today, overdue, self.policy.zone, self.words)

    def _last_check_in(self, now: datetime) -> datetime | None:
        """When she last asked something on her own (a check-in, or a follow-up):
        one per silence."""
        if any(h.notice.kind in ("check_in", "follow_up") for h in self._handed):
            return now  # handed out, not yet shown: not a second one
        given = [_last_given(self.store, self.user_id, kind) for kind in ("check_in", "follow_up")]
        return max((t for t in given if t is not None), default=None)
