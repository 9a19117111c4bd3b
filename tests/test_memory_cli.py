"""``companion memory ...`` end to end on a temporary data directory (fake embedder)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from companion.cli.main import main
from companion.memory import HashEmbedder, LongTermMemory, Store

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def seeded(companion_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPANION_EMBEDDER", "hash")
    with Store.open(companion_home / "companion.db") as store:
        memory = LongTermMemory(store, embedder=HashEmbedder())
        session = store.start_session("theo", NOW)
        for text in ["My sister is called Maya.", "I love jazz.", "My ex-boyfriend Sam is rude."]:
            with store.transaction():
                memory.remember(store.add_turn("theo", session.id, "user", text, NOW))
    return companion_home


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["memory", *args, "--user", "theo"]) == 0
    return capsys.readouterr().out


def test_list_search_show_pin_edit_forget(seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "User's sister is called Maya." in run(capsys, "list")
    assert "Maya" in run(capsys, "search", "sister").splitlines()[0]
    shown = run(capsys, "show", "1")
    assert "from [t1]" in shown and "My sister is called Maya." in shown
    assert "(pinned)" in run(capsys, "pin", "2")
    assert "bebop" in run(capsys, "edit", "2", "User loves bebop.")
    out = run(capsys, "forget", "Sam")
    assert out.startswith("Forgot: removed 1 fact, 1 message.")
    assert "Sam" not in run(capsys, "export")


def test_export_then_import_elsewhere(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "me.json"
    assert main(["memory", "export", "-o", str(path), "--user", "theo"]) == 0
    assert main(["memory", "import", str(path), "--user", "theo2"]) == 0
    assert "3 turns" in capsys.readouterr().out
    assert main(["memory", "list", "--user", "theo2"]) == 0
    assert "Maya" in capsys.readouterr().out


def test_a_bad_import_is_one_clear_line(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "companion-user-export/1", "migrations": ["m999_x"]}))
    assert main(["memory", "import", str(path), "--user", "theo"]) == 2
    assert "newer companion" in capsys.readouterr().err
    path.write_text("{not json")
    assert main(["memory", "import", str(path), "--user", "theo"]) == 2
    assert "cannot read" in capsys.readouterr().err


# -- hardening (issue 12) ------------------------------------------------------------

HUGE = "99999999999999999999999"


@pytest.mark.parametrize("args", [
    ("forget", HUGE), ("pin", HUGE), ("edit", HUGE, "text"), ("show", HUGE),
    ("show", "t" + HUGE), ("pin", "s" + HUGE), ("pin", "t1"), ("edit", "²", "text"),
    ("show", "²"), ("forget", "t" + HUGE),
])
def test_a_bad_id_is_one_line(
    seeded: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    assert main(["memory", *args, "--user", "theo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("companion: error: ") and err.count("\n") == 1


def _export(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["memory", "export", "--user", "theo"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


BAD_IMPORTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "text importance": lambda d: d["facts"][0].update(importance="high"),
    "list importance": lambda d: d["facts"][0].update(importance=[1]),
    "importance out of range": lambda d: d["facts"][0].update(importance=7),
    "integer turn_ids": lambda d: d["facts"][0].update(turn_ids=3),
    "text turn_ids": lambda d: d["facts"][0].update(turn_ids=["1"]),
    "nested summary turn_ids": lambda d: d["summaries"].append(
        {"session_id": d["sessions"][0]["id"], "text": "x", "turn_ids": [[1]],
         "created_at": d["sessions"][0]["started_at"]}),
    "huge id": lambda d: d["turns"][0].update(id=10**30),
    "list migration": lambda d: d["migrations"].append([1]),
    "summaries not a list": lambda d: d.update(summaries=5),
    "bad superseded_at": lambda d: d["facts"][0].update(superseded_at="yesterday"),
    "lone surrogate": lambda d: d["facts"][0].update(text="I love \ud800 jazz"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMPORTS))
def test_a_malformed_import_is_one_line_and_writes_nothing(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    data = _export(capsys)
    BAD_IMPORTS[case](data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    assert main(["memory", "import", str(path), "--user", "theo2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("companion: error: ") and err.count("\n") == 1, err
    with Store.open(seeded / "companion.db") as store:
        assert store.export_user("theo2")["turns"] == []


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a":' * 200 + "1" + "}" * 200])
def test_deeply_nested_json_is_one_line(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "deep.json"
    path.write_text(text)
    assert main(["memory", "import", str(path), "--user", "theo2"]) == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and err.count("\n") == 1


def test_listing_a_fact_with_escapes_prints_it_clean(
    seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(seeded / "companion.db") as store, store.transaction() as conn:
        conn.execute("UPDATE facts SET text = ? WHERE id = 1",
                     ("User's sister is \x1b]0;pwned\x07\x1b[31mMaya\x9b2J.",))
    for args in (("list",), ("show", "1"), ("export",)):
        out = run(capsys, *args)
        assert "Maya" in out and "\x1b" not in out and "\x07" not in out and "\x9b" not in out
