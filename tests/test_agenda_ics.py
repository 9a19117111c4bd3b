"""iCalendar export and import: a round trip, the files other calendars write, and
hostile files (too big, too many events, rules that fire every second, garbage)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from companion.agenda import store as agenda
from companion.agenda.ics import from_ics, to_ics
from companion.agenda.model import AgendaItem, Draft
from companion.errors import InputError
from companion.memory import Store

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "c.db") as s:
        yield s


def _import(store: Store, user: str, data: bytes) -> int:
    found = from_ics(data, default_tz="Europe/Paris")
    return agenda.import_items(store, user, list(found), tz="Europe/Paris", now=NOW)


def _cal(*lines: str) -> bytes:
    return ("\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *lines,
                         "END:VCALENDAR"]) + "\r\n").encode()


def test_round_trip_into_another_user(store: Store) -> None:
    def add(what: str, when: datetime, kind: str, **kw: object) -> None:
        draft = Draft(what, when, kind, **kw)  # type: ignore[arg-type]
        agenda.add_item(store, "ana", draft, tz="Europe/Paris", now=NOW)

    add("pills", datetime(2026, 3, 23, 9, 0, tzinfo=PARIS), "reminder",
        rrule="FREQ=WEEKLY;BYDAY=MO,TH;COUNT=6")
    add("interview", datetime(2026, 3, 24, 10, 30, tzinfo=PARIS), "plan")
    add("trip to Lyon", datetime(2026, 3, 28, tzinfo=PARIS), "plan", all_day=True)
    add("dentist", datetime(2026, 3, 25, 14, 0, tzinfo=ZoneInfo("America/New_York")), "reminder")
    done = agenda.list_items(store, "ana")[1]
    agenda.set_status(store, "ana", done.id, "cancelled", NOW)
    items = agenda.list_items(store, "ana", statuses=("pending", "cancelled"))
    data = to_ics(items, now=NOW)
    text = data.decode()
    assert "BEGIN:VTIMEZONE" in text and "TZID:Europe/Paris" in text
    assert "DTSTART;VALUE=DATE:20260328" in text and "BEGIN:VALARM" in text
    assert "STATUS:CANCELLED" in text
    assert _import(store, "ben", data) == 4
    assert _import(store, "ben", data) == 0  # the same UIDs again: nothing added

    def shape(item: AgendaItem) -> tuple[object, ...]:
        rule = set(item.rrule.split(";")) if item.rrule else None
        return (item.what, item.when, item.when.tzinfo, item.kind, item.status, item.all_day,
                rule, item.uid)

    theirs = agenda.list_items(store, "ben", statuses=("pending", "cancelled"))
    assert [shape(i) for i in theirs] == [shape(i) for i in items]
    pills = next(i for i in theirs if i.what == "pills")
    ahead = agenda.between(store, "ben", pills.when, datetime(2027, 1, 1, tzinfo=UTC))
    assert len([t for i, t in ahead if i.id == pills.id]) == 6  # COUNT=6 kept


def test_reads_google_thunderbird_and_outlook_files(store: Store) -> None:
    data = _cal(
        "X-WR-TIMEZONE:America/New_York",
        "BEGIN:VEVENT", "UID:g1@google.com", "DTSTART:20260401T130000Z",
        "SUMMARY:Standup", "RRULE:FREQ=WEEKLY;BYDAY=WE;UNTIL=20260430T130000Z", "END:VEVENT",
        "BEGIN:VEVENT", "UID:g1@google.com", "RECURRENCE-ID:20260408T130000Z",
        "DTSTART:20260408T150000Z", "SUMMARY:Standup (moved)", "END:VEVENT",
        "BEGIN:VEVENT", "UID:floating", "DTSTART:20260402T090000", "SUMMARY:Floating",
        "END:VEVENT",
        "BEGIN:VEVENT", "UID:allday", "DTSTART;VALUE=DATE:20260403",
        "RRULE:FREQ=YEARLY;UNTIL=20280403", "SUMMARY:Birthday", "END:VEVENT",
        "BEGIN:VEVENT", "UID:win", "DTSTART;TZID=W. Europe Standard Time:20260404T100000",
        "SUMMARY:Outlook meeting", "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M",
        "DESCRIPTION:x", "END:VALARM", "END:VEVENT",
        "BEGIN:VTODO", "UID:t1", "DUE;VALUE=DATE:20260405", "SUMMARY:Taxes",
        "STATUS:COMPLETED", "END:VTODO",
        "BEGIN:VTODO", "UID:t2", "SUMMARY:Someday", "END:VTODO",
        "BEGIN:VEVENT", "UID:c1", "DTSTART;TZID=Europe/Paris:20260406T200000",
        "STATUS:CANCELLED", "SUMMARY:Dinner", "END:VEVENT",
    )
    found = {i.uid: i for i in from_ics(data, default_tz="Europe/Paris")}
    assert sorted(found) == ["allday", "c1", "floating", "g1@google.com", "t1", "win"]
    standup = found["g1@google.com"].draft
    assert standup.when == datetime(2026, 4, 1, 13, tzinfo=UTC) and standup.kind == "plan"
    assert set(str(standup.rrule).split(";")) == {"FREQ=WEEKLY", "BYDAY=WE",
                                                 "UNTIL=20260430T130000Z"}
    floating = found["floating"].draft.when
    assert floating == datetime(2026, 4, 2, 9, tzinfo=ZoneInfo("America/New_York"))
    birthday = found["allday"].draft
    assert birthday.all_day and birthday.when is not None
    assert birthday.when.date() == date(2026, 4, 3)
    assert found["win"].draft.when == datetime(2026, 4, 4, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    assert found["win"].draft.kind == "reminder"
    assert found["t1"].status == "done" and found["c1"].status == "cancelled"
    assert _import(store, "ana", data) == 6
    assert [i.what for i in agenda.list_items(store, "ana")] == [
        "Standup", "Floating", "Birthday", "Outlook meeting"]


@pytest.mark.parametrize(("data", "message"), [
    (b"x" * (5 * 1024 * 1024 + 1), "too large"),
    (_cal(*["BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260401T090000Z\r\nSUMMARY:x\r\nEND:VEVENT"]
          * 10_000), "at most 5000"),
    (_cal("BEGIN:VEVENT", "UID:s", "DTSTART:20260401T090000Z", "SUMMARY:Spam",
          "RRULE:FREQ=SECONDLY", "END:VEVENT"), "event 'Spam'.*secondly"),
    (_cal("BEGIN:VEVENT", "UID:b", "DTSTART:20260401T090000Z", "SUMMARY:Broken",
          "RRULE:FREQ=DAILY;BYDAY=XX", "END:VEVENT"), "event 'Broken'"),
    (_cal("BEGIN:VEVENT", "UID:n", "SUMMARY:No start", "END:VEVENT"), "no start time"),
    (_cal("BEGIN:VEVENT", "UID:d", "DTSTART:notadate", "SUMMARY:Bad date", "END:VEVENT"),
     "event 'Bad date'"),
    ("BEGIN:VCALENDAR\r\nSUMMARY:caf\xe9\r\nEND:VCALENDAR\r\n".encode("latin-1"), "not UTF-8"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not UTF-8"),
    (b"hello, this is not a calendar", "not an iCalendar file"),
    (b"BEGIN:VCALENDAR\r\nthis line is garbage\r\nEND:VCALENDAR\r\n",
     "not a calendar file I can read"),
])
def test_hostile_files_are_one_line_errors_and_add_nothing(
        store: Store, data: bytes, message: str) -> None:
    good = _cal("BEGIN:VEVENT", "UID:ok", "DTSTART:20260401T090000Z", "SUMMARY:fine",
                "END:VEVENT")
    mixed = data if len(data) > 1024 * 1024 or b"END:VCALENDAR" not in data else \
        data.replace(b"END:VCALENDAR\r\n", good.split(b"PRODID:-//test//EN\r\n")[1])
    with pytest.raises(InputError, match=message) as info:
        _import(store, "ana", mixed)
    assert "\n" not in str(info.value)
    assert agenda.list_items(store, "ana") == []


def test_an_error_while_storing_adds_nothing(store: Store) -> None:
    data = _cal("BEGIN:VEVENT", "UID:1", "DTSTART:20260401T090000Z", "SUMMARY:first",
                "END:VEVENT")
    found = from_ics(data, default_tz="UTC")
    bad = found[0]._replace(draft=Draft("second", None, "plan"), uid="2")
    with pytest.raises(InputError):
        agenda.import_items(store, "ana", [found[0], bad], tz="UTC", now=NOW)
    assert agenda.list_items(store, "ana") == []
