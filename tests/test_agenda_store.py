"""The agenda's storage: items per user, exactly-once firing, recurrence across DST,
follow-ups, the day's occurrences, export/import, erase and forget."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from companion.agenda import store as agenda
from companion.agenda.model import AgendaItem, Draft
from companion.errors import InputError
from companion.memory import Store
from companion.memory.forget import cascade_forget
from companion.memory.transfer import import_user

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 23, 8, 0, tzinfo=PARIS)  # a Monday, six days before DST starts


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "c.db") as s:
        yield s


def add(store: Store, what: str, when: datetime, *, user: str = "ana", kind: str = "reminder",
        rrule: str | None = None, all_day: bool = False,
        turn: int | None = None) -> AgendaItem:
    draft = Draft(what, when, kind, all_day=all_day, rrule=rrule)  # type: ignore[arg-type]
    return agenda.add_item(store, user, draft, tz="Europe/Paris", now=NOW, source_turn_id=turn)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def test_add_stores_utc_and_returns_the_items_zone(store: Store) -> None:
    item = add(store, "  call   Maya ", datetime(2026, 3, 23, 17, 0, tzinfo=UTC))
    assert item.what == "call Maya" and item.when == at(23, 18)
    assert item.when.tzinfo == PARIS and item.uid.endswith("@companion")
    row = store.conn.execute("SELECT when_utc, tz FROM agenda WHERE id = ?", (item.id,)).fetchone()
    assert tuple(row) == ("2026-03-23T17:00:00.000000+00:00", "Europe/Paris")
    assert agenda.get_item(store, "ana", item.id) == item


def test_same_words_same_time_is_one_item(store: Store) -> None:
    first = add(store, "Call Maya", at(23, 18))
    again = add(store, "call maya", at(23, 18))
    other = add(store, "call Maya", at(23, 19))
    assert again.id == first.id and other.id != first.id
    assert [i.id for i in agenda.list_items(store, "ana")] == [first.id, other.id]


@pytest.mark.parametrize(("draft", "message"), [
    (Draft("call Maya", None, "reminder"), "needs a time"),
    (Draft("call Maya", at(23, 7), "reminder", question="7 this evening?"), "7 this evening?"),
    (Draft("   ", at(23, 18), "reminder"), "needs some words"),
    (Draft("x" * 501, at(23, 18), "reminder"), "at most 500"),
    (Draft("pills", at(23, 9), "reminder", rrule="FREQ=SOMETIMES"), "recurrence"),
    (Draft("pills", at(23, 9), "reminder", rrule="FREQ=SECONDLY"), "not supported"),
])
def test_bad_drafts_are_one_line_input_errors(store: Store, draft: Draft, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        agenda.add_item(store, "ana", draft, tz="Europe/Paris", now=NOW)
    assert "\n" not in str(info.value)
    assert store.conn.execute("SELECT count(*) FROM agenda").fetchone()[0] == 0


def test_unknown_zone_is_refused(store: Store) -> None:
    with pytest.raises(InputError, match="unknown time zone"):
        agenda.add_item(store, "ana", Draft("x", at(23, 9), "plan"), tz="Mars/Olympus", now=NOW)


def test_users_never_see_each_others_items(store: Store) -> None:
    mine = add(store, "call Maya", at(23, 9))
    theirs = add(store, "call Maya", at(23, 9), user="ben")
    assert theirs.id != mine.id
    assert [i.id for i in agenda.list_items(store, "ben")] == [theirs.id]
    for act in (lambda: agenda.get_item(store, "ben", mine.id),
                lambda: agenda.set_status(store, "ben", mine.id, "done", NOW),
                lambda: agenda.snooze(store, "ben", mine.id, at(23, 10)),
                lambda: agenda.fired(store, "ben", mine.id)):
        with pytest.raises(InputError, match=f"no agenda item {mine.id}"):
            act()
    fires = agenda.claim_due(store, "ben", at(23, 9, 1))
    assert [f.item.id for f in fires] == [theirs.id]
    assert [f.item.id for f in agenda.claim_due(store, "ana", at(23, 9, 1))] == [mine.id]


def test_a_reminder_fires_exactly_once(store: Store) -> None:
    item = add(store, "call Maya", at(23, 9))
    assert agenda.claim_due(store, "ana", at(23, 8, 59)) == []
    first = agenda.claim_due(store, "ana", at(23, 9))
    second = agenda.claim_due(store, "ana", at(23, 9))
    assert [(f.item.id, f.due_at) for f in first] == [(item.id, at(23, 9))]
    assert second == first  # claimed once; returned again only because not yet shown
    assert store.conn.execute("SELECT count(*) FROM agenda_fires").fetchone()[0] == 1
    agenda.mark_shown(store, "ana", first, at(23, 9))
    assert agenda.claim_due(store, "ana", at(23, 9, 5)) == []
    assert agenda.claim_due(store, "ana", at(30, 9)) == []
    assert agenda.get_item(store, "ana", item.id).status == "pending"  # until done
    assert agenda.fired(store, "ana", item.id) == [at(23, 9)]


def test_a_fire_claimed_before_a_crash_is_delivered_after_it(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Store.open(path) as s:
        add(s, "call Maya", at(23, 9))
        claimed = agenda.claim_due(s, "ana", at(23, 9))
        assert len(claimed) == 1
    # the process died before showing it: the next process gets it, unclaimed again
    with Store.open(path) as s:
        again = agenda.claim_due(s, "ana", at(23, 9, 1))
        assert [(f.item.id, f.due_at, f.shown) for f in again] == [
            (claimed[0].item.id, at(23, 9), False)]
        assert s.conn.execute("SELECT count(*) FROM agenda_fires").fetchone()[0] == 1
        agenda.mark_shown(s, "ana", again, at(23, 9, 1))
    with Store.open(path) as s:
        assert agenda.claim_due(s, "ana", at(23, 10)) == []


def test_daily_reminder_keeps_its_wall_time_across_dst(store: Store) -> None:
    item = add(store, "pills", at(27, 9), rrule="FREQ=DAILY")
    seen = []
    for day in (27, 28, 29, 30):  # DST starts on the 29th in Paris
        fires = agenda.claim_due(store, "ana", at(day, 9, 1))
        agenda.mark_shown(store, "ana", fires, at(day, 9, 1))
        seen += [f.due_at for f in fires]
    assert seen == [at(27, 9), at(28, 9), at(29, 9), at(30, 9)]
    assert [t.utcoffset() for t in seen] == [timedelta(hours=1)] * 2 + [timedelta(hours=2)] * 2
    assert agenda.get_item(store, "ana", item.id).when == at(31, 9)


def test_missed_occurrences_fire_once_for_the_latest(store: Store) -> None:
    add(store, "pills", at(20, 9), rrule="FREQ=DAILY")
    fires = agenda.claim_due(store, "ana", at(26, 12))  # nothing ran for six days
    assert [f.due_at for f in fires] == [at(26, 9)]
    assert agenda.list_items(store, "ana")[0].when == at(27, 9)


def test_count_ends_a_series(store: Store) -> None:
    item = add(store, "pills", at(23, 9), rrule="FREQ=DAILY;COUNT=2")
    assert item.rrule is not None and "COUNT" not in item.rrule and "UNTIL=" in item.rrule
    for day in (23, 24, 25, 26):
        agenda.mark_shown(store, "ana", agenda.claim_due(store, "ana", at(day, 10)), at(day, 10))
    assert agenda.fired(store, "ana", item.id) == [at(23, 9), at(24, 9)]


def test_snooze_fires_again_then_pending(store: Store) -> None:
    item = add(store, "call Maya", at(23, 9))
    agenda.mark_shown(store, "ana", agenda.claim_due(store, "ana", at(23, 9)), at(23, 9))
    snoozed = agenda.snooze(store, "ana", item.id, at(23, 9, 10))
    assert snoozed.status == "snoozed" and snoozed.next_time == at(23, 9, 10)
    assert agenda.claim_due(store, "ana", at(23, 9, 9)) == []
    fires = agenda.claim_due(store, "ana", at(23, 9, 10))
    assert [f.due_at for f in fires] == [at(23, 9, 10)]
    agenda.mark_shown(store, "ana", fires, at(23, 9, 10))
    assert agenda.get_item(store, "ana", item.id).status == "pending"
    assert agenda.claim_due(store, "ana", at(23, 12)) == []


def test_snoozed_before_its_time_fires_once(store: Store) -> None:
    item = add(store, "pills", at(23, 9), rrule="FREQ=DAILY")
    agenda.snooze(store, "ana", item.id, at(23, 9, 30))
    fires = agenda.claim_due(store, "ana", at(23, 9, 40))
    assert [f.due_at for f in fires] == [at(23, 9, 30)]
    assert agenda.get_item(store, "ana", item.id).when == at(24, 9)


def test_plans_are_never_snoozed(store: Store) -> None:
    plan = add(store, "interview", at(24, 10), kind="plan")
    with pytest.raises(InputError, match="plan"):
        agenda.snooze(store, "ana", plan.id, at(24, 11))


def test_done_on_a_recurring_item_is_this_occurrence(store: Store) -> None:
    item = add(store, "pills", at(23, 9), rrule="FREQ=DAILY")
    # done ahead of time: today's never fires, tomorrow's still does
    early = agenda.set_status(store, "ana", item.id, "done", at(23, 8))
    assert early.status == "pending" and early.when == at(24, 9)
    assert agenda.claim_due(store, "ana", at(23, 9, 30)) == []
    fires = agenda.claim_due(store, "ana", at(24, 9))
    agenda.mark_shown(store, "ana", fires, at(24, 9))
    # done after it fired: the fired one is done, the next is kept
    after = agenda.set_status(store, "ana", item.id, "done", at(24, 9, 5))
    assert after.status == "pending" and after.when == at(25, 9)
    cancelled = agenda.set_status(store, "ana", item.id, "cancelled", at(24, 10))
    assert cancelled.status == "cancelled"
    assert agenda.claim_due(store, "ana", at(26, 10)) == []
    assert agenda.list_items(store, "ana") == []
    assert [i.id for i in agenda.list_items(store, "ana", statuses=("cancelled",))] == [item.id]


def test_follow_ups_for_plans_that_are_over(store: Store) -> None:
    talk = add(store, "interview", at(24, 10), kind="plan")
    trip = add(store, "trip to Lyon", at(24, 0), kind="plan", all_day=True)
    reminder = add(store, "call Maya", at(24, 9))
    assert agenda.follow_ups_due(store, "ana", at(24, 9)) == []
    assert [i.id for i in agenda.follow_ups_due(store, "ana", at(24, 11))] == [talk.id]
    assert agenda.claim_due(store, "ana", at(24, 11))[0].item.id == reminder.id  # plans: no fire
    assert [i.id for i in agenda.follow_ups_due(store, "ana", at(25, 0))] == [trip.id, talk.id]
    agenda.mark_followed_up(store, "ana", [talk.id, trip.id], at(25, 8))
    assert agenda.follow_ups_due(store, "ana", at(26, 8)) == []
    assert agenda.get_item(store, "ana", talk.id).followed_up_at == at(25, 8)


def test_between_expands_recurrences(store: Store) -> None:
    pills = add(store, "pills", at(23, 9), rrule="FREQ=DAILY")
    talk = add(store, "interview", at(24, 10), kind="plan")
    add(store, "next week", at(30, 10), kind="plan")
    found = agenda.between(store, "ana", at(23, 0), at(25, 0))
    assert [(i.id, t) for i, t in found] == [
        (pills.id, at(23, 9)), (pills.id, at(24, 9)), (talk.id, at(24, 10))]


def test_reschedule_moves_and_reopens(store: Store) -> None:
    plan = add(store, "interview", at(24, 10), kind="plan")
    agenda.mark_followed_up(store, "ana", [plan.id], at(24, 12))
    moved = agenda.reschedule(store, "ana", plan.id, at(26, 15), rrule="FREQ=WEEKLY")
    assert (moved.when, moved.rrule, moved.followed_up_at) == (at(26, 15), "FREQ=WEEKLY", None)
    kept = agenda.reschedule(store, "ana", plan.id, at(26, 16))
    assert kept.rrule == "FREQ=WEEKLY"


def test_export_import_erase_and_forget(store: Store, tmp_path: Path) -> None:
    session = store.start_session("ana", NOW)
    turn = store.add_turn("ana", session.id, "user", "remind me to call Maya at 6", NOW)
    call = add(store, "call Maya", at(23, 18), turn=turn.id)
    pills = add(store, "pills", at(23, 9), rrule="FREQ=DAILY")
    agenda.mark_shown(store, "ana", agenda.claim_due(store, "ana", at(23, 9)), at(23, 9))
    data = json.loads(json.dumps(store.export_user("ana")))
    assert [a["what"] for a in data["agenda"]] == ["call Maya", "pills"]
    assert data["agenda"][1]["fires"][0]["due_at"] == "2026-03-23T08:00:00.000000+00:00"
    with Store.open(tmp_path / "other.db") as other:
        with other.transaction() as conn:
            counts = import_user(conn, data, "ana")
        with other.transaction() as conn:
            import_user(conn, data, "ana")  # same UIDs: nothing added twice
        assert counts["agenda items"] == 2
        moved = agenda.list_items(other, "ana")
        assert [(i.what, i.when, i.rrule, i.uid) for i in moved] == [
            (i.what, i.when, i.rrule, i.uid) for i in agenda.list_items(store, "ana")]
        assert moved[0].what == "call Maya" and moved[0].source_turn_id is not None
        assert agenda.claim_due(other, "ana", at(23, 10)) == []  # fired there already
        old = {k: v for k, v in data.items() if k != "agenda"}  # an export from before
        with other.transaction() as conn:
            import_user(conn, old, "cy")
        bad = dict(data, agenda=[dict(data["agenda"][0], tz="Nowhere/Land")])
        with pytest.raises(InputError, match=r"agenda\[0\].*time zone"), \
                other.transaction() as conn:
            import_user(conn, bad, "dee")
        assert "dee" not in other.users()
    with store.transaction() as conn:  # "forget that": the reminder set by it goes too
        removed = cascade_forget(conn, "ana", f"t{turn.id}")
    assert removed.agenda == 1 and "1 agenda item" in removed.describe()
    assert [i.id for i in agenda.list_items(store, "ana")] == [pills.id]
    with store.transaction() as conn:
        assert cascade_forget(conn, "ana", "pills").agenda == 1
    add(store, "water plants", at(25, 9))
    store.erase_user("ana")
    assert store.conn.execute("SELECT count(*) FROM agenda").fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM agenda_fires").fetchone()[0] == 0
    assert call.id not in [i.id for i in agenda.list_items(store, "ana")]


def test_snoozing_a_reminder_not_yet_due_postpones_it(tmp_path: Path) -> None:
    from datetime import timedelta

    from companion.agenda import store as agenda_store
    from companion.agenda.model import Draft
    from companion.memory.store import Store

    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 12, 7, 18, 20, tzinfo=paris)
    with Store.open(tmp_path / "c.db") as store:
        store.ensure_user("theo", now)
        later = agenda_store.add_item(store, "theo", Draft("take the pills",
                                      datetime(2026, 12, 7, 19, 0, tzinfo=paris), "reminder"),
                                      tz="Europe/Paris", now=now)
        moved = agenda_store.snooze_by(store, "theo", later.id, timedelta(minutes=10), now)
        assert moved.next_time == datetime(2026, 12, 7, 19, 10, tzinfo=paris)
        due = agenda_store.add_item(store, "theo", Draft("stretch",
                                    datetime(2026, 12, 7, 18, 0, tzinfo=paris), "reminder"),
                                    tz="Europe/Paris", now=now - timedelta(hours=1))
        again = agenda_store.snooze_by(store, "theo", due.id, timedelta(minutes=10), now)
        assert again.next_time == datetime(2026, 12, 7, 18, 30, tzinfo=paris)
