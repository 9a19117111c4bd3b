"""When she may speak first (the pure policy) and what she says (the wording)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from companion.agenda import store as agenda
from companion.agenda.fire import Poller
from companion.agenda.model import AgendaItem, Draft, Fire
from companion.agenda.proactive import (
    Policy,
    Situation,
    briefing_due,
    check_in_due,
    may_speak,
    parse_quiet_hours,
    room_today,
)
from companion.agenda.wording import (
    briefing_notice,
    check_in_notice,
    follow_up_notice,
    load_wording,
    reminder_notice,
)
from companion.dialog import Companion
from companion.errors import ConfigError
from companion.testing import FakeClock, open_test_companion

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def policy(**changes: object) -> Policy:
    base = Policy.from_config(SimpleNamespace(
        proactive=True, quiet_hours="22:00-08:00", max_unprompted_per_day=4,
        checkin_after_minutes=120), PARIS)
    return Policy(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})


def test_quiet_hours_are_read_and_cross_midnight_in_the_users_zone() -> None:
    assert parse_quiet_hours("22:00-08:00") == (time(22), time(8))
    assert parse_quiet_hours("") is None
    assert parse_quiet_hours("09:00-09:00") is None
    with pytest.raises(ConfigError, match="22:00-08:00"):
        parse_quiet_hours("late")
    p = policy()
    assert p.in_quiet_hours(paris(2026, 12, 7, 23, 30))
    assert p.in_quiet_hours(paris(2026, 12, 8, 7, 59))
    assert not p.in_quiet_hours(paris(2026, 12, 8, 8, 0))
    assert not p.in_quiet_hours(paris(2026, 12, 7, 21, 59))
    # 21:30 UTC is 22:30 in Paris in winter: quiet there
    assert p.in_quiet_hours(datetime(2026, 12, 7, 21, 30, tzinfo=UTC))
    day = policy(quiet=parse_quiet_hours("13:00-14:00"))
    assert day.in_quiet_hours(paris(2026, 12, 7, 13, 30))
    assert not day.in_quiet_hours(paris(2026, 12, 7, 23, 30))
    assert not policy(quiet=None).in_quiet_hours(paris(2026, 12, 7, 3, 0))


def test_a_reminder_may_always_be_given_unprompted_notices_keep_the_limits() -> None:
    p = policy()
    night = Situation(now=paris(2026, 12, 7, 23, 30), typing=True, unprompted_today=9)
    assert may_speak(p, "reminder", night)
    assert may_speak(policy(proactive=False), "reminder", night)
    day = Situation(now=paris(2026, 12, 7, 15, 0))
    for kind in ("briefing", "follow_up", "check_in"):
        assert may_speak(p, kind, day)
        assert not may_speak(p, kind, Situation(now=paris(2026, 12, 7, 23, 0)))  # quiet
        assert not may_speak(p, kind, Situation(now=day.now, typing=True))
        assert not may_speak(p, kind, Situation(now=day.now, unprompted_today=4))
        assert not may_speak(policy(proactive=False), kind, day)
    assert room_today(p, Situation(now=day.now, unprompted_today=1)) == 3
    assert room_today(p, Situation(now=day.now, unprompted_today=1, typing=True)) == 0


def test_briefing_once_a_day_and_one_check_in_per_silence() -> None:
    p = policy()
    now = paris(2026, 12, 7, 15, 0)
    assert briefing_due(p, Situation(now=now))
    assert not briefing_due(p, Situation(now=now, briefed_today=True))
    spoke = now - timedelta(minutes=119)
    assert not check_in_due(p, Situation(now=now, last_user_at=spoke))
    spoke = now - timedelta(minutes=120)
    assert check_in_due(p, Situation(now=now, last_user_at=spoke))
    # she checked in after they last spoke: not again until they speak
    later = Situation(now=now + timedelta(hours=3), last_user_at=spoke,
                      checked_in_at=now)
    assert not check_in_due(p, later)
    assert not check_in_due(policy(checkin_after=None), Situation(now=now, last_user_at=spoke))
    assert not check_in_due(p, Situation(now=now, last_user_at=spoke, typing=True))


def _item(id: int, what: str, when: datetime, **kw: object) -> AgendaItem:
    return AgendaItem(id=id, what=what, when=when, kind=kw.pop("kind", "reminder"),  # type: ignore[arg-type]
                      **kw)  # type: ignore[arg-type]


def test_the_words_of_each_notice() -> None:
    words = load_wording()
    now = paris(2026, 12, 7, 15, 0)
    call = _item(3, "call Maya", paris(2026, 12, 7, 15, 0))
    on_time = reminder_notice(Fire(call, call.when), now + timedelta(seconds=1), PARIS, words)
    assert (on_time.kind, on_time.text, on_time.item_ids) == (
        "reminder", "Hey, it's time: call Maya.",
                                                              (3,))
    late = reminder_notice(Fire(call, call.when), now + timedelta(days=1), PARIS, words)
    assert late.text == "I was meant to remind you yesterday at 3 pm: call Maya."
    dentist = _item(4, "dentist appointment", paris(2026, 12, 7, 17, 30), kind="plan")
    trip = _item(5, "Maya's birthday", paris(2026, 12, 7), all_day=True, kind="plan")
    old = _item(6, "pay the rent", paris(2026, 12, 1, 9, 0))
    brief = briefing_notice([(dentist, dentist.when), (trip, trip.when)], [old], PARIS, words)
    assert brief is not None
    assert brief.text == ("Here's your day: 5:30 pm dentist appointment; Maya's birthday. "
                          "Still open from before: pay the rent.")
    assert brief.item_ids == (4, 5, 6)
    assert briefing_notice([], [], PARIS, words) is None
    interview = _item(7, "the interview", paris(2026, 12, 6, 10, 0), kind="plan")
    assert follow_up_notice(interview, now, PARIS, words).text == (
        "So, how did the interview go?")
    line = check_in_notice(now, PARIS, words)
    assert line.kind == "check_in" and line.item_ids == ()
    assert line.text in [t.format(part_of_day="afternoon") for t in words.check_in]
    assert check_in_notice(now + timedelta(hours=1), PARIS, words) == line  # same all day


# -- the poller, on a real store with the fake clock ------------------------------------


def _open(tmp_path: Path, clock: FakeClock, **settings: object) -> Companion:
    return open_test_companion(tmp_path, clock=clock, timezone="Europe/Paris", **settings)


def companion_poller(c: Companion) -> Poller:
    """A new poller on ``c``'s store, as another process (or a restart) would have."""
    return Poller(c.store, c.user, policy=Policy.from_config(c.config, c.zone()),
                  clock=c.clock, session=lambda: c.session)


def _add(c: Companion, what: str, when: datetime, kind: str = "reminder", **kw: object) -> int:
    draft = Draft(what=what, when=when, kind=kind, **kw)  # type: ignore[arg-type]
    return agenda.add_item(c.store, c.user, draft, tz="Europe/Paris", now=c._clock()).id


def _said(c: Companion) -> list[str]:
    return [t.content for t in c.history() if t.role == "assistant"]


def test_a_reminder_fires_once_at_its_time_and_is_stored_as_her_turn(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(tmp_path, clock)
    item = _add(c, "call Maya", paris(2026, 12, 7, 14, 30))
    poller = companion_poller(c)
    assert poller.due_notices() == []
    clock.advance(minutes=29, seconds=59)
    assert poller.due_notices() == []
    clock.advance(seconds=1)
    notices = poller.due_notices()
    assert [(n.kind, n.text, n.item_ids) for n in notices] == [
        ("reminder", "Hey, it's time: call Maya.", (item,))]
    assert poller.due_notices() == []  # handed out, not yet shown: not again
    turns = poller.delivered(notices)
    assert [t.content for t in turns] == ["Hey, it's time: call Maya."]
    assert turns[0].session_id == c.session.id
    clock.advance(minutes=5)
    assert poller.due_notices() == []
    assert companion_poller(c).due_notices() == []  # nor for another poller
    assert agenda.fired(c.store, c.user, item) == [paris(2026, 12, 7, 14, 30)]
    assert _said(c) == ["Hey, it's time: call Maya."]
    c.close()


def test_a_crash_between_claim_and_mark_delivers_once_after_restart(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(tmp_path, clock)
    _add(c, "take the pills", paris(2026, 12, 7, 14, 0), rrule="FREQ=DAILY")
    claimed = companion_poller(c).due_notices()
    assert [n.text for n in claimed] == ["Hey, it's time: take the pills."]
    c.close()  # "killed" before it was shown: nothing marked
    clock.advance(minutes=3)  # the next run (past the time another process is given)
    c = _open(tmp_path, clock)
    poller = companion_poller(c)
    again = poller.due_notices()
    assert [n.text for n in again] == ["I was meant to remind you at 2 pm: take the pills."]
    poller.delivered(again)
    c.close()
    c = _open(tmp_path, clock)
    assert companion_poller(c).due_notices() == []  # never twice
    clock.advance(days=1, minutes=-3)  # the next day's occurrence is a new fire
    assert [n.text for n in companion_poller(c).due_notices() if n.kind == "reminder"] == [
        "Hey, it's time: take the pills."]
    assert _said(c) == ["I was meant to remind you at 2 pm: take the pills."]
    c.close()


def test_a_fire_another_process_claimed_a_moment_ago_is_left_to_it(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(tmp_path, clock)
    _add(c, "call Maya", paris(2026, 12, 7, 14, 0))
    chat = companion_poller(c)
    cron = companion_poller(c)
    shown = chat.due_notices()
    clock.advance(seconds=30)  # the chat is still streaming a reply when cron runs
    assert cron.due_notices() == []
    chat.delivered(shown)
    clock.advance(minutes=10)
    assert cron.due_notices() == [] and chat.due_notices() == []
    c.close()


def test_reminders_fire_in_quiet_hours_while_typing_and_with_proactive_off(
    tmp_path: Path,
) -> None:
    clock = FakeClock(paris(2026, 12, 7, 23, 0))
    c = _open(tmp_path, clock, proactive=False)
    _add(c, "put the bins out", paris(2026, 12, 7, 23, 30))
    clock.advance(minutes=30)
    poller = companion_poller(c)
    due = [n.text for n in poller.due_notices(typing=True)]
    assert due == ["Hey, it's time: put the bins out."]
    c.close()


def test_check_in_after_silence_once_per_silence_within_limits(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 13, 0))
    c = _open(tmp_path, clock, checkin_after_minutes=60, max_unprompted_per_day=2)
    c.say("hello").text()
    poller = companion_poller(c)
    clock.advance(minutes=59)
    assert poller.due_notices() == []
    clock.advance(minutes=1)
    assert poller.due_notices(typing=True) == []  # never while typing
    notices = poller.due_notices()
    assert [n.kind for n in notices] == ["check_in"]
    assert notices[0].text in [t.format(part_of_day="afternoon")
                               for t in load_wording().check_in]
    poller.delivered(notices)
    clock.advance(hours=3)
    assert poller.due_notices() == []  # she spoke last: not again until they answer
    c.say("sorry, busy day").text()
    clock.advance(hours=1)
    poller.delivered(poller.due_notices())  # the second one today
    clock.advance(minutes=1)
    c.say("back").text()
    clock.advance(hours=1)
    assert poller.due_notices() == []  # the day's limit (2) is reached
    clock.advance(days=1)  # 19:01 the next day: a new day
    assert [n.kind for n in poller.due_notices()] == ["check_in"]
    c.close()


def test_no_check_in_in_quiet_hours_or_with_proactive_off(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 20, 0))
    c = _open(tmp_path, clock, checkin_after_minutes=60)
    c.say("hello").text()
    clock.advance(hours=2, minutes=30)  # 22:30
    assert companion_poller(c).due_notices() == []
    c.close()
    clock = FakeClock(paris(2026, 12, 8, 14, 0))
    c = _open(tmp_path, clock, checkin_after_minutes=60, proactive=False)
    c.say("hello").text()
    clock.advance(hours=2)
    assert companion_poller(c).due_notices() == []
    c.close()


def test_briefing_once_a_day_at_the_first_opening(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 7, 30))
    c = _open(tmp_path, clock)
    _add(c, "pay the rent", paris(2026, 12, 5, 9, 0))
    _add(c, "dentist appointment", paris(2026, 12, 7, 15, 0), kind="plan")
    _add(c, "water the plants", paris(2026, 12, 7, 18, 0), rrule="FREQ=DAILY")
    _add(c, "next week's thing", paris(2026, 12, 14, 9, 0))
    poller = companion_poller(c)
    poller.due_notices()  # the rent reminder fires (late) and is shown
    poller.delivered(poller.pending())
    assert poller.opening() == []  # 7:30 is inside quiet hours
    clock.advance(hours=1)
    notices = poller.opening()
    assert [n.text for n in notices] == [
        "Here's your day: 3 pm dentist appointment; 6 pm water the plants. "
        "Still open from before: pay the rent."]
    poller.delivered(notices)
    clock.advance(hours=2)
    assert companion_poller(c).opening() == []  # once a day
    clock.advance(days=1)  # a new day: a briefing, and how the dentist went
    assert [n.kind for n in companion_poller(c).opening()] == ["briefing", "follow_up"]
    c.close()


def test_a_plan_is_followed_up_once_after_its_time(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 9, 0))
    c = _open(tmp_path, clock)
    plan = _add(c, "the interview", paris(2026, 12, 7, 10, 0), kind="plan")
    poller = companion_poller(c)
    poller.delivered(poller.opening())  # the briefing
    clock.advance(hours=1, minutes=30)  # 10:30: it is barely over
    assert poller.opening() == []
    clock.advance(days=1)
    c.close()
    c = _open(tmp_path, clock)
    poller = companion_poller(c)
    notices = poller.opening()
    follow = [n for n in notices if n.kind == "follow_up"]
    assert [(n.text, n.item_ids) for n in follow] == [
        ("So, how did the interview go?", (plan,))]
    poller.delivered(notices)
    assert agenda.get_item(c.store, c.user, plan).followed_up_at == clock.now
    c.close()
    clock.advance(hours=1)
    c = _open(tmp_path, clock)
    assert companion_poller(c).opening() == []  # asked once
    c.close()


def test_a_follow_up_takes_the_place_of_a_check_in(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 9, 0))
    c = _open(tmp_path, clock, checkin_after_minutes=120)
    _add(c, "the interview", paris(2026, 12, 7, 10, 0), kind="plan")
    c.say("wish me luck").text()
    poller = companion_poller(c)
    clock.advance(hours=3)  # 12:00: two hours after it, three of silence
    notices = poller.due_notices()
    assert [n.kind for n in notices] == ["follow_up"]
    poller.delivered(notices)
    clock.advance(hours=3)
    assert poller.due_notices() == []  # she asked; they have not answered
    c.close()


def test_the_notice_log_goes_with_the_user(tmp_path: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(tmp_path, clock)
    _add(c, "call Maya", paris(2026, 12, 7, 14, 0))
    poller = companion_poller(c)
    poller.delivered(poller.due_notices())

    def logged() -> int:
        with c.store.reading() as conn:
            return int(conn.execute("SELECT count(*) FROM agenda_notices").fetchone()[0])

    assert logged() == 1
    c.store.erase_user(c.user)
    assert logged() == 0
    c.store.close()  # (its session is gone with the user)
