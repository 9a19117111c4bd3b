"""``companion remind --due``: the cron / systemd timer command. Due reminders are
printed (and handed to notify-send when it exists), stored as her turn, and
never given twice; nothing due prints nothing; both exit 0."""

from __future__ import annotations

import argparse
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from companion.agenda import store as agenda
from companion.agenda.model import Draft
from companion.cli.main import main
from companion.cli.remind import run_remind
from companion.memory import Store
from companion.testing import FakeClock

PARIS = ZoneInfo("Europe/Paris")


def _add(home: Path, user: str, what: str, when: datetime, **kw: object) -> int:
    with Store.open(home / "companion.db") as store:
        draft = Draft(what=what, when=when, kind="reminder", **kw)  # type: ignore[arg-type]
        return agenda.add_item(store, user, draft, tz="Europe/Paris", now=when).id


def _said(home: Path, user: str) -> list[str]:
    with Store.open(home / "companion.db") as store:
        return [t.content for t in store.recent_turns(user, 50) if t.role == "assistant"]


def _args(**kw: object) -> argparse.Namespace:
    values: dict[str, object] = {"config": None, "user": "theo", "all_users": False,
                                 "no_notify": True, "due": True}
    values.update(kw)
    return argparse.Namespace(**values)


@pytest.fixture
def home(companion_home: Path) -> Path:
    companion_home.mkdir(parents=True, exist_ok=True)
    (companion_home / "config.toml").write_text('timezone = "Europe/Paris"\n')
    return companion_home


def test_scripted_times_fire_each_reminder_once(home: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 7, 8, 59, tzinfo=PARIS))
    _add(home, "theo", "take the pills", datetime(2026, 12, 7, 9, 0, tzinfo=PARIS),
         rrule="FREQ=DAILY")
    _add(home, "theo", "call Maya", datetime(2026, 12, 7, 9, 1, tzinfo=PARIS))
    printed: list[str] = []
    for _ in range(5):  # cron, once a minute from 8:59 to 9:03
        out = io.StringIO()
        assert run_remind(_args(), clock=clock, out=out) == 0
        printed.append(out.getvalue())
        clock.advance(minutes=1)
    assert printed == ["", "Hey, it's time: take the pills.\n",
                       "Hey, it's time: call Maya.\n", "", ""]
    assert _said(home, "theo") == ["Hey, it's time: take the pills.", "Hey, it's time: call Maya."]
    clock.now = datetime(2026, 12, 8, 9, 0, 30, tzinfo=PARIS)  # the next day
    out = io.StringIO()
    run_remind(_args(), clock=clock, out=out)
    assert out.getvalue() == "Hey, it's time: take the pills.\n"


def test_a_late_run_says_when_it_was_due_and_all_users_are_named(home: Path) -> None:
    _add(home, "theo", "call Maya", datetime(2026, 12, 7, 9, 0, tzinfo=PARIS))
    _add(home, "ana", "water the plants", datetime(2026, 12, 7, 10, 0, tzinfo=PARIS))
    clock = FakeClock(datetime(2026, 12, 7, 10, 0, tzinfo=PARIS))  # the laptop was asleep
    out = io.StringIO()
    assert run_remind(_args(user=None, all_users=True), clock=clock, out=out) == 0
    assert out.getvalue().splitlines() == ["ana: Hey, it's time: water the plants.",
                                           "theo: I was meant to remind you at 9 am: call Maya."]
    out = io.StringIO()
    run_remind(_args(user=None, all_users=True), clock=clock, out=out)
    assert out.getvalue() == ""


def test_the_command_line_prints_notifies_and_exits_0(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "notified"
    script = bin_dir / "notify-send"
    script.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> "{log}"\necho >> "{log}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    now = datetime.now(UTC)
    _add(home, "theo", "call \x1b[2JMaya", now - timedelta(seconds=30))
    _add(home, "theo", "later thing", now + timedelta(hours=1))
    assert main(["remind", "--due", "--user", "theo"]) == 0
    # no escape reaches the terminal
    assert capsys.readouterr().out == "Hey, it's time: call Maya.\n"
    assert log.read_text() == "--app-name=companion|--|Reminder|Hey, it's time: call Maya.|\n"
    assert main(["remind", "--due", "--user", "theo"]) == 0
    assert capsys.readouterr().out == ""
    assert log.read_text().count("\n") == 1


def test_no_notify_send_is_fine_and_bad_input_is_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    _add(home, "theo", "call Maya", datetime.now(UTC) - timedelta(seconds=5))
    assert main(["remind", "--due", "--user", "theo"]) == 0
    assert capsys.readouterr().out == "Hey, it's time: call Maya.\n"
    assert main(["remind", "--due", "--user", "no/such user"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("companion: error:") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:
        main(["remind"])  # --due is the action: required
    assert exit_.value.code == 2
