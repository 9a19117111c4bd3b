"""Hostile files: memory import files and character cards.

A file is imported whole or refused in one line, never with a traceback; a
refused file changes nothing (the store, the user's personas); what an imported
file holds is never printed raw afterwards. Strategies: tests/hostile_inputs.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hostile_inputs import (
    card_files,
    deep_json,
    mutated,
    one_line_error,
    raw_markers,
    run_cli,
    snapshot,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from companion.errors import PersonaError
from companion.persona import import_card
from companion.testing import FakeLLM, open_test_companion

BOUNDED = settings(max_examples=20, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])


def _export() -> dict[str, Any]:
    """A real export: turns, facts (with turn ids), a summary and a persona state."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        c = open_test_companion(Path(folder), llm=FakeLLM(), user="source")
        try:
            for text in ("I love green tea and my cat is called Tom.", "I live in Paris.",
                         "My sister Anna is a painter."):
                c.say(text).text()
            c.new_session().text()
            data: dict[str, Any] = json.loads(json.dumps(c.export()))
        finally:
            c.close()
    return data


EXPORT = _export()


def _import(companion_home: Path, path: Path) -> tuple[int, str, str]:
    before = snapshot(companion_home)
    status, out, err = run_cli(["memory", "import", str(path), "--user", "imp"])
    assert status in (0, 2) and "Traceback" not in err
    assert one_line_error(status, err), err
    assert not raw_markers(out + err), (out, err)
    if status == 2:
        assert snapshot(companion_home) == before, "a refused import changed the store"
    return status, out, err


def test_the_unbroken_export_imports(companion_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(EXPORT), encoding="utf-8")
    assert _import(companion_home, path)[0] == 0
    assert len(snapshot(companion_home)["turns"]) == len(EXPORT["turns"])


@BOUNDED
@given(data=st.data())
def test_a_broken_import_file_is_refused_whole_in_one_line(
    companion_home: Path, tmp_path: Path, data: st.DataObject
) -> None:
    document = data.draw(mutated(EXPORT))
    path = tmp_path / "broken.json"
    path.write_bytes(json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    status, _, _ = _import(companion_home, path)
    if status == 0:  # what it held is shown safely
        for argv in (["memory", "list", "--user", "imp"], ["memory", "export", "--user", "imp"]):
            shown, out, err = run_cli(argv)
            assert shown == 0 and not raw_markers(out + err), (argv, out, err)


@pytest.mark.parametrize(
    "content",
    [
        deep_json(100_000).encode(),
        b"\xff\xfe{}",
        b"",
        b"null",
        json.dumps({**EXPORT, "facts": [{**EXPORT["facts"][0], "importance": "high"}]}).encode(),
        json.dumps({**EXPORT, "facts": [{**EXPORT["facts"][0], "importance": [1]}]}).encode(),
        json.dumps({**EXPORT, "facts": [{**EXPORT["facts"][0], "turn_ids": 1}]}).encode(),
    ],
    ids=["deep", "not-utf8", "empty", "null", "text-importance", "list-importance",
         "integer-turn-ids"],
)
def test_known_broken_import_files(companion_home: Path, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert _import(companion_home, path)[0] == 2


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=card_files())
def test_a_card_is_read_or_refused_with_one_persona_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "card.png"
    path.write_bytes(content)
    try:
        persona = import_card(path)
    except PersonaError as exc:
        assert "\n" not in str(exc)
        return
    assert persona.name.strip()


@BOUNDED
@given(content=card_files(), suffix=st.sampled_from([".json", ".png", ".card"]))
def test_persona_import_takes_any_file_in_one_line_and_never_prints_it_raw(
    companion_home: Path, tmp_path: Path, content: bytes, suffix: str
) -> None:
    personas = companion_home / "personas"
    before = sorted(personas.iterdir()) if personas.exists() else []
    path = tmp_path / f"card{suffix}"
    path.write_bytes(content)
    status, out, err = run_cli(["persona", "import", str(path), "--name", "hostile"])
    assert status in (0, 2) and "Traceback" not in err
    assert one_line_error(status, err), err
    assert not raw_markers(out + err), (out, err)
    if status == 2:
        assert (sorted(personas.iterdir()) if personas.exists() else []) == before
        return
    for argv in (["persona", "show", "hostile"], ["persona", "list"],
                 ["chat", "--model", "fake", "--no-greeting", "--persona", "hostile"]):
        shown, out, err = run_cli(argv, b"hello\n")
        assert shown == 0 and not raw_markers(out + err), (argv, out, err)


def test_a_card_named_with_escapes_is_never_printed_raw(tmp_path: Path) -> None:
    path = tmp_path / "evil.json"
    path.write_text(json.dumps({"name": "\x1b]0;pwned\x07\x1b[31mEvil", "first_mes": "\x1b[2J"}))
    assert run_cli(["persona", "import", str(path), "--name", "evil"])[0] == 0
    for argv in (["persona", "show", "evil"], ["persona", "list"],
                 ["chat", "--model", "fake", "--persona", "evil"]):
        status, out, err = run_cli(argv, b"hello\n/persona\n")
        assert status == 0 and not raw_markers(out + err), (argv, out, err)
        assert "Evil" in out or argv[1] == "list"
