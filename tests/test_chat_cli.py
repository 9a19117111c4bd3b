"""The terminal chat driven by scripted stdin, checked in the database afterwards."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


def run(
    home: Path, *args: str, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COMPANION_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "companion", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=timeout,
    )


def db_rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(home / "companion.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_scripted_chat_is_stored(companion_home: Path) -> None:
    script = "Hi! My name is Theo.\nI work as a nurse in Boston.\n/memories\n/mood\n/quit\n"
    out = run(companion_home, "chat", "--model", "fake", "--user", "theo", stdin=script)
    assert out.returncode == 0, out.stderr
    assert "Samantha: " in out.stdout
    assert "nurse" in out.stdout  # /memories lists the fact
    assert "valence" in out.stdout.lower()  # /mood
    turns = db_rows(companion_home, "select role, content from turns order by id")
    users = [c for r, c in turns if r == "user"]
    assert users == ["Hi! My name is Theo.", "I work as a nurse in Boston."]
    assert [r for r, _ in turns].count("assistant") == 3  # greeting + two replies


def test_persistence_across_two_processes(companion_home: Path) -> None:
    first = run(companion_home, "--model", "fake", "--user", "theo",
                stdin="My name is Theo.\nI love jazz.\n")
    assert first.returncode == 0, first.stderr
    second = run(companion_home, "chat", "--model", "fake", "--user", "theo", stdin="/memories\n")
    assert second.returncode == 0, second.stderr
    greeting = second.stdout.splitlines()[0]
    assert greeting.startswith("Samantha: Theo!")  # the returning greeting's opening
    assert "jazz" in second.stdout
    sessions = db_rows(companion_home, "select count(*) from sessions where user_id='theo'")
    assert sessions == [(2,)]


def test_export_forget_and_new(companion_home: Path, tmp_path: Path) -> None:
    target = tmp_path / "me.json"
    script = f"I love jazz.\n/forget jazz\n/memories\n/new\n/export {target}\n"
    out = run(companion_home, "--model", "fake", "--user", "theo", stdin=script)
    assert out.returncode == 0, out.stderr
    assert "Forgot " in out.stdout and "nothing remembered" in out.stdout
    assert target.exists() and "jazz" not in target.read_text()  # forgetting is real


def test_empty_and_escape_lines_are_handled(companion_home: Path) -> None:
    script = "\n   \n\x1b]0;evil\x07\nhello \x1b[31mthere\x1b[0m\n/nonsense\n"
    out = run(companion_home, "--model", "fake", "--user", "u", stdin=script)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout
    assert "unknown command /nonsense" in out.stderr
    users = db_rows(companion_home, "select content from turns where role='user'")
    assert users == [("hello there",)]


def test_broken_config_is_one_line_naming_file_and_line(companion_home: Path) -> None:
    companion_home.mkdir(parents=True)
    (companion_home / "config.toml").write_text('model = "fake"\nmax_tokens = [\n')
    out = run(companion_home, "chat", stdin="hi\n")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    line = out.stderr.strip()
    assert "\n" not in line and "config.toml" in line and "line" in line


def test_broken_persona_file_is_one_line(companion_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "Ava"\ndescription = """unterminated\n')
    out = run(companion_home, "--model", "fake", "--persona", str(bad), stdin="hi\n")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "bad.toml" in out.stderr and out.stderr.count("\n") == 1


def test_unknown_model_names_what_was_tried(companion_home: Path) -> None:
    out = run(companion_home, "--model", "no-such-model-xyz", stdin="hi\n")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no-such-model-xyz" in out.stderr and "smollm2-135m-instruct" in out.stderr


def test_corrupt_database_is_not_overwritten(companion_home: Path) -> None:
    companion_home.mkdir(parents=True)
    db = companion_home / "companion.db"
    db.write_bytes(b"\x00garbage" * 512)
    out = run(companion_home, "--model", "fake", stdin="hi\n")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "companion.db" in out.stderr
    assert db.read_bytes() == b"\x00garbage" * 512


def test_locked_database_is_a_clear_error(companion_home: Path) -> None:
    run(companion_home, "--model", "fake", stdin="hello\n")
    con = sqlite3.connect(companion_home / "companion.db", isolation_level=None)
    con.execute("begin exclusive")
    try:
        env = dict(os.environ, COMPANION_HOME=str(companion_home))
        out = subprocess.run(
            [sys.executable, "-m", "companion", "--model", "fake"],
            input="hi\n", capture_output=True, text=True, env=env, timeout=60,
        )
    finally:
        con.rollback()
        con.close()
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "locked" in out.stderr


SLOW_CHAT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from companion import Companion, FakeLLM
    from companion.cli.chat import ChatLoop, _stdin_reader
    llm = FakeLLM(["one two three four five six seven eight nine ten " * 20], delay=0.05)
    home = Path(sys.argv[1])
    c = Companion.open(user="theo", model=llm, home=home)
    ChatLoop(c, _stdin_reader(sys.stdin), sys.stdout, sys.stderr, home).run(greet=False)
    c.close()
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_during_a_reply_stops_it_and_keeps_it(companion_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHAT, str(companion_home)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("tell me a long story\n")
    proc.stdin.flush()
    seen = ""
    deadline = time.monotonic() + 30
    while "three" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.read(1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    rest, err = proc.communicate("and then?\n", timeout=60)
    assert proc.returncode == 0, err
    assert "[stopped]" in seen + rest
    turns = db_rows(companion_home, "select role, content, interrupted from turns order by id")
    assert turns[0] == ("user", "tell me a long story", 0)
    role, content, interrupted = turns[1]
    assert role == "assistant" and interrupted == 1 and "three" in str(content)
    assert len(str(content)) < len("one two three four five six seven eight nine ten " * 20)
    assert turns[2][:2] == ("user", "and then?")


def test_kill_during_a_reply_keeps_every_finished_turn(companion_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHAT, str(companion_home)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("first message\n")
    proc.stdin.flush()
    seen = ""
    while "three" not in seen:
        seen += proc.stdout.read(1)
    proc.kill()
    proc.communicate(timeout=30)
    turns = db_rows(companion_home, "select role, content from turns order by id")
    assert turns == [("user", "first message")]
    assert db_rows(companion_home, "pragma integrity_check") == [("ok",)]
