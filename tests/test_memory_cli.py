"""``companion memory ...`` end to end on a temporary data directory (fake embedder)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

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
