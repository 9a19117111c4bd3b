"""Recurrence rules: checked against hostile input, expanded on wall time across DST."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from companion.agenda.recur import check_rule, find_rule, next_occurrence, occurrences
from companion.errors import InputError

PARIS = ZoneInfo("Europe/Paris")


def test_weekly_nine_stays_nine_across_the_spring_change() -> None:
    start = datetime(2027, 3, 22, 9, 0, tzinfo=PARIS)  # Monday, UTC+1
    found = occurrences(start, "FREQ=WEEKLY;BYDAY=MO", start,
                        datetime(2027, 4, 13, tzinfo=PARIS))
    assert [(d.day, d.hour) for d in found] == [(22, 9), (29, 9), (5, 9), (12, 9)]
    assert [d.utcoffset() for d in found][:2] == [
        datetime(2027, 3, 22, 8, tzinfo=UTC) - datetime(2027, 3, 22, 7, tzinfo=UTC),
        datetime(2027, 3, 29, 9, tzinfo=UTC) - datetime(2027, 3, 29, 7, tzinfo=UTC)]
    nxt = next_occurrence(start, "FREQ=WEEKLY;BYDAY=MO", start)
    assert nxt == datetime(2027, 3, 29, 9, 0, tzinfo=PARIS)
    assert nxt is not None and nxt.astimezone(UTC).hour == 7


def test_a_time_skipped_by_the_change_moves_on_and_rules_end() -> None:
    start = datetime(2027, 3, 27, 2, 30, tzinfo=PARIS)
    skipped = next_occurrence(start, "FREQ=DAILY", start)
    assert skipped is not None and skipped.astimezone(UTC) == datetime(2027, 3, 28, 1, 30,
                                                                       tzinfo=UTC)
    assert next_occurrence(start, "FREQ=DAILY;COUNT=1", start) is None
    until = occurrences(start, "FREQ=DAILY;UNTIL=20270330T000000Z", start,
                        datetime(2027, 5, 1, tzinfo=PARIS))
    assert len(until) == 3


@pytest.mark.parametrize("rule", [
    "", "FREQ=SECONDLY", "FREQ=MINUTELY", "FREQ=WEEKLY;BYSECOND=1", "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=100000", "FREQ=DAILY;COUNT=99999", "FREQ=WEEKLY;BYDAY=XX",
    "FREQ=DAILY;FREQ=WEEKLY", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "FREQ=MONTHLY;BYMONTHDAY=40",
    "FREQ=DAILY;X-EVIL=1", "FREQ=DAILY;" + "BYDAY=MO;" * 100, "\x1b[2J",
])
def test_hostile_rules_are_refused_quickly_in_one_line(rule: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        check_rule(rule)
    assert "\n" not in str(caught.value)
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(("text", "rule"), [
    ("every monday", "FREQ=WEEKLY;BYDAY=MO"),
    ("each Friday", "FREQ=WEEKLY;BYDAY=FR"),
    ("every Mon and Thu", "FREQ=WEEKLY;BYDAY=MO,TH"),
    ("every day", "FREQ=DAILY"),
    ("every weekday", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ("every week", "FREQ=WEEKLY"),
    ("every month", "FREQ=MONTHLY"),
    ("every year", "FREQ=YEARLY"),
    ("every morning at 8", "FREQ=DAILY"),
    ("on the first of every month", "FREQ=MONTHLY;BYMONTHDAY=1"),
    ("every 2 weeks", "FREQ=WEEKLY;INTERVAL=2"),
    ("daily", "FREQ=DAILY"),
    ("weekly", "FREQ=WEEKLY"),
    ("on mondays and wednesdays", "FREQ=WEEKLY;BYDAY=MO,WE"),
])
def test_recurrences_in_words(text: str, rule: str) -> None:
    found = find_rule(f"remind me {text} to stretch")
    assert found is not None and found[2] == rule
    check_rule(found[2])


def test_no_recurrence_in_ordinary_words() -> None:
    for text in ("on monday", "I sat in the sun", "this month", "on sunny days"):
        assert find_rule(text) is None
