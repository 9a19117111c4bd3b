"""``companion agenda``: driven through ``main([...])`` and checked in the database."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from companion.agenda import store as agenda
from companion.agenda.model import AgendaItem
from companion.cli.main import main
from companion.memory import Store

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def paris(companion_home: Path) -> None:
    companion_home.mkdir(parents=True, exist_ok=True)
    (companion_home / "config.toml").write_text('timezone = "Europe/Paris"\n')


def items(home: Path, user: str = "ana", *, everything: bool = False) -> list[AgendaItem]:
    with Store.open(home / "companion.db") as store:
        return agenda.list_items(store, user, statuses=(
            ("pending", "snoozed", "done", "cancelled") if everything else ("pending", "snoozed")))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["agenda", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_list_done_snooze_cancel(companion_home: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "add", "call Maya", "tomorrow at 6pm", "--user", "ana")
    assert code == 0 and out.startswith("Added: [1]") and "call Maya" in out
    tomorrow = datetime.now(PARIS).date() + timedelta(days=1)
    [call] = items(companion_home)
    assert (call.what, call.kind, call.when) == (
        "call Maya", "reminder", datetime.combine(tomorrow, datetime.min.time(), PARIS)
        .replace(hour=18))
    code, out, _ = run(capsys, "add", "remind me to water the plants every monday at 9",
                       "--user", "ana")
    assert code == 0
    plants = next(i for i in items(companion_home) if i.what != "call Maya")
    assert plants.rrule == "FREQ=WEEKLY;BYDAY=MO" and plants.when.weekday() == 0
    assert plants.when.hour == 9 and "water the plants" in plants.what
    code, out, _ = run(capsys, "add", "interview", "friday 10am", "--plan", "--user", "ana")
    assert code == 0
    [plan] = [i for i in items(companion_home) if i.kind == "plan"]
    assert plan.what == "interview" and (plan.when.weekday(), plan.when.hour) == (4, 10)

    code, out, _ = run(capsys, "list", "--user", "ana")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert any(line.startswith(f"[{plants.id}] ") and "(every Monday)" in line for line in lines)

    assert run(capsys, "snooze", str(call.id), "10m", "--user", "ana")[0] == 0
    snoozed = next(i for i in items(companion_home) if i.id == call.id)
    assert snoozed.status == "snoozed" and snoozed.snoozed_until is not None
    # not due yet: snoozing postpones it from its own time
    assert snoozed.snoozed_until == call.when + timedelta(minutes=10)
    assert run(capsys, "done", str(call.id), "--user", "ana")[0] == 0
    assert run(capsys, "cancel", str(plants.id), "--user", "ana")[0] == 0
    states = {i.id: i.status for i in items(companion_home, everything=True)}
    assert states[call.id] == "done" and states[plants.id] == "cancelled"
    assert [i.id for i in items(companion_home)] == [plan.id]

    code, out, _ = run(capsys, "list", "--all", "--json", "--user", "ana")
    listed = {d["id"]: d for d in json.loads(out)}
    assert listed[call.id]["status"] == "done" and listed[plants.id]["rrule"] == \
        "FREQ=WEEKLY;BYDAY=MO"
    assert run(capsys, "--user", "ben")[1].startswith("Nothing ahead")  # list is the default


@pytest.mark.parametrize(("args", "message"), [
    (("done", "99"), "no agenda item 99"),
    (("done", "first"), "not an agenda item number"),
    (("cancel", "99999999999999999999999"), "too large"),
    (("snooze", "1", "forever"), "not a duration"),
    (("add", "call Maya", "when pigs fly"), ""),
    (("add", "call Maya soon"), "no date or time"),
    (("add", "", "tomorrow at 6pm"), "needs some words"),
    (("import", "/nonexistent/file.ics"), "cannot read"),
])
def test_bad_input_is_one_line_and_changes_nothing(
        companion_home: Path, capsys: pytest.CaptureFixture[str],
        args: tuple[str, ...], message: str) -> None:
    run(capsys, "add", "call Maya", "tomorrow at 6pm", "--user", "ana")
    code, out, err = run(capsys, *args, "--user", "ana")
    assert code == 2 and out == ""
    assert err.startswith("companion: error: ") and err.count("\n") == 1 and message in err
    [item] = items(companion_home)
    assert item.status == "pending" and item.what == "call Maya"


def test_unknown_zone_in_config(companion_home: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    (companion_home / "config.toml").write_text('timezone = "Mars/Olympus"\n')
    code, _, err = run(capsys, "list", "--user", "ana")
    assert code == 2 and "Mars/Olympus" in err and err.count("\n") == 1


def test_export_and_import(companion_home: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "add", "call Maya", "tomorrow at 6pm", "--user", "ana")
    run(capsys, "add", "pills", "every day at 9", "--user", "ana")
    out_file = tmp_path / "agenda.ics"
    code, _, err = run(capsys, "export", "-o", str(out_file), "--user", "ana")
    assert code == 0 and f"Wrote {out_file}" in err
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    assert out_file.read_bytes().count(b"BEGIN:VEVENT") == 2
    code, _, err = run(capsys, "export", "-o", str(out_file), "--user", "ana")
    assert code == 2 and "already exists" in err
    assert run(capsys, "export", "-o", str(out_file), "--force", "--user", "ana")[0] == 0

    code, out, _ = run(capsys, "import", str(out_file), "--user", "ben")
    assert code == 0 and out.startswith("Imported 2 agenda items for user 'ben'")
    code, out, _ = run(capsys, "import", str(out_file), "--user", "ben")
    assert "Imported 0 agenda items" in out and "(2 already there)" in out
    assert [(i.what, i.when, i.rrule) for i in items(companion_home, "ben")] == [
        (i.what, i.when, i.rrule) for i in items(companion_home, "ana")]

    garbage = tmp_path / "bad.ics"
    garbage.write_bytes(b"BEGIN:VCALENDAR\r\n\x1b[31mred\r\nEND:VCALENDAR\r\n")
    code, _, err = run(capsys, "import", str(garbage), "--user", "cy")
    assert code == 2 and "\x1b" not in err and err.count("\n") == 1
    assert items(companion_home, "cy") == []
