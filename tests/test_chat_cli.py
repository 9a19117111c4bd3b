"""The terminal chat driven by scripted stdin, checked in the database afterwards."""

from __future__ import annotations

import json
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
    script = f"I love jazz.\n/forget jazz\ny\n/memories\n/new\n/export {target}\n"
    out = run(companion_home, "--model", "fake", "--user", "theo", stdin=script)
    assert out.returncode == 0, out.stderr
    assert "This would forget 1 fact, 2 messages:" in out.stdout
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


# Words that never repeat, so that the reply guard lets the whole story through.
LONG_STORY = "one two three four five six seven eight nine ten " + " ".join(
    f"then{i}" for i in range(190))

SLOW_CHAT = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    from companion import Companion, FakeLLM
    from companion.cli.chat import ChatLoop, _stdin_reader
    llm = FakeLLM([{LONG_STORY!r}], delay=0.05)
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
    assert len(str(content)) < len(LONG_STORY)
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


# -- hardening (issue 12): escapes, typed input, private files, locks, kills ----------

EVIL_NAME = "\u001b]0;pwned\u0007\u001b[31mEvil"


def _no_escapes(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text


def test_a_card_name_with_escapes_is_printed_clean(companion_home: Path, tmp_path: Path) -> None:
    card = tmp_path / "evil.json"
    card.write_text(json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": EVIL_NAME, "description": "\x1b[2Jwipes screens", "first_mes": "Hi \x1b[2J"}}))
    out = run(companion_home, "--model", "fake", "--persona", str(card), "--user", "u",
              stdin="hello\n/persona\n")
    assert out.returncode == 0, out.stderr
    _no_escapes(out.stdout + out.stderr)
    assert out.stdout.count("Evil: ") == 3  # greeting, reply, /persona


def test_imported_facts_and_echoed_commands_are_printed_clean(
    companion_home: Path, tmp_path: Path
) -> None:
    first = run(companion_home, "--model", "fake", "--user", "theo", stdin="I love jazz.\n")
    assert first.returncode == 0, first.stderr
    exported = tmp_path / "me.json"
    assert run(companion_home, "memory", "export", "-o", str(exported), "--user", "theo"
               ).returncode == 0
    data = json.loads(exported.read_text())
    data["facts"][0]["text"] = "User loves \x1b]0;pwned\x07\x1b[31mjazz\u202e."
    data["turns"][0]["content"] = "I love \x1b[2Jjazz."
    exported.write_text(json.dumps(data))
    imported = run(companion_home, "memory", "import", str(exported), "--user", "eve")
    assert imported.returncode == 0, imported.stderr
    for args in (("list",), ("search", "jazz"), ("show", "2")):
        out = run(companion_home, "memory", *args, "--user", "eve")
        assert out.returncode == 0 and "jazz" in out.stdout, out.stderr
        _no_escapes(out.stdout)
        assert "\u202e" not in out.stdout
    out = run(companion_home, "--model", "fake", "--user", "eve",
              stdin="/memories\n/\x1b]0;pwned\x07nonsense \x1b[2J\n/forget \x1b[2Jzzz\n")
    assert out.returncode == 0, out.stderr
    assert "jazz" in out.stdout and "unknown command /nonsense" in out.stderr
    _no_escapes(out.stdout + out.stderr)


def test_a_line_of_bad_bytes_is_one_line_and_the_next_line_is_answered(
    companion_home: Path,
) -> None:
    env = dict(os.environ, COMPANION_HOME=str(companion_home))
    out = subprocess.run(
        [sys.executable, "-m", "companion", "chat", "--model", "fake", "--user", "u"],
        input=b"\xff\xfe bad\nhello\n", capture_output=True, env=env, timeout=60,
    )
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert "Traceback" not in err and err.count("\n") == 1 and "UTF-8" in err
    assert db_rows(companion_home, "select content from turns where role='user'") == [("hello",)]
    assert out.stdout.decode().count("Samantha: ") == 2  # the greeting and the answer


@pytest.mark.parametrize("arg", ["99999999999999999999999", "²", "t99999999999999999999999"])
def test_a_bad_forget_id_is_one_line(companion_home: Path, arg: str) -> None:
    out = run(companion_home, "--model", "fake", "--user", "u",
              stdin=f"I love jazz.\n/forget {arg}\nhello\n")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") <= 1
    users = db_rows(companion_home, "select content from turns where role='user'")
    assert users == [("I love jazz.",), ("hello",)]


def test_forget_by_words_shows_what_and_asks_first(companion_home: Path) -> None:
    script = "I love jazz.\nMy sister is Maya.\n/forget jazz\nn\n/forget jazz\n"  # no, then EOF
    out = run(companion_home, "--model", "fake", "--user", "u", stdin=script)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("This would forget 1 fact, 2 messages:") == 2
    assert "User loves jazz." in out.stdout and "Forget them? [y/N]" in out.stdout
    assert "Forgot" not in out.stdout and out.stdout.count("(nothing forgotten)") == 2
    facts = db_rows(companion_home, "select text from facts order by id")
    assert ("User loves jazz.",) in facts
    out = run(companion_home, "--model", "fake", "--user", "u", stdin="/forget 1\n")
    assert "Forgot 3:" in out.stdout  # an id is explicit: no question
    assert ("User loves jazz.",) not in db_rows(companion_home, "select text from facts")


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_exports_are_private_and_never_overwritten(companion_home: Path, tmp_path: Path) -> None:
    target = tmp_path / "me.json"
    target.write_text("keep me")
    out = run(companion_home, "--model", "fake", "--user", "theo",
              stdin=f"I love jazz.\n/export {target}\n/export\nhello\n")
    assert out.returncode == 0, out.stderr
    assert target.read_text() == "keep me"
    assert "already exists" in out.stderr and "--force" in out.stderr
    assert out.stderr.count("\n") == 1
    exports = list((companion_home / "exports").iterdir())
    assert len(exports) == 1 and exports[0].name.startswith("theo-")
    assert _mode(exports[0]) == 0o600 and _mode(companion_home / "exports") == 0o700
    assert _mode(companion_home) == 0o700
    out = run(companion_home, "--model", "fake", "--user", "theo",
              stdin=f"/export {target} --force\n")
    assert out.returncode == 0, out.stderr
    assert "jazz" in target.read_text() and _mode(target) == 0o600
    again = run(companion_home, "memory", "export", "-o", str(target), "--user", "theo")
    assert again.returncode == 2 and "already exists" in again.stderr
    fresh = tmp_path / "fresh.json"
    assert run(companion_home, "memory", "export", "-o", str(fresh), "--user", "theo"
               ).returncode == 0
    assert _mode(fresh) == 0o600


def test_the_data_directory_is_private_whatever_runs_first(
    companion_home: Path, tmp_path: Path
) -> None:
    card = tmp_path / "ava.json"
    card.write_text(json.dumps({"name": "Ava", "description": "A friend."}))
    out = run(companion_home, "persona", "import", str(card))
    assert out.returncode == 0, out.stderr
    assert _mode(companion_home) == 0o700
    assert all(_mode(p) == 0o700 for p in companion_home.rglob("*") if p.is_dir())
    assert all(_mode(p) == 0o600 for p in companion_home.rglob("*") if p.is_file())


@pytest.mark.parametrize("user", ["../../x", "", "a/b", ".hidden"])
def test_unsafe_or_empty_user_ids_are_refused(companion_home: Path, user: str) -> None:
    out = run(companion_home, "--model", "fake", "--user", user, stdin="hello\n/export\n")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "user" in out.stderr and "Traceback" not in out.stderr
    assert not (companion_home / "companion.db").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminal")
def test_the_prompt_history_is_private(companion_home: Path) -> None:
    from companion.cli.chat import _private_history

    companion_home.mkdir(mode=0o755)
    (companion_home / "history").write_text("old line\n")
    os.chmod(companion_home / "history", 0o644)  # as older versions left it
    path = _private_history(companion_home)
    assert _mode(path) == 0o600 and path.read_text() == "old line\n"
    fresh = _private_history(companion_home / "new")
    assert _mode(fresh) == 0o600 and _mode(fresh.parent) == 0o700


def test_a_lock_held_over_five_seconds_keeps_the_message(companion_home: Path) -> None:
    run(companion_home, "--model", "fake", "--user", "u", stdin="first\n")
    env = dict(os.environ, COMPANION_HOME=str(companion_home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "companion", "--model", "fake", "--user", "u", "--no-greeting"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdin and proc.stderr
    time.sleep(2)  # opened (its session is written) before the lock is taken
    con = sqlite3.connect(companion_home / "companion.db", isolation_level=None)
    con.execute("begin exclusive")
    try:
        proc.stdin.write("second, sent while locked\n")
        proc.stdin.flush()
        notice = proc.stderr.readline()  # after the first 5 s wait
        time.sleep(1)
    finally:
        con.rollback()
        con.close()
    out, err = proc.communicate("third\n", timeout=60)
    assert proc.returncode == 0, notice + err
    assert "locked" in notice and "Traceback" not in err
    users = db_rows(companion_home, "select content from turns where role='user' order by id")
    assert users == [("first",), ("second, sent while locked",), ("third",)]
    assert out.count("Samantha: ") == 2


ENDS_SLOWLY = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from companion import Companion, FakeLLM
    from companion.cli.chat import ChatLoop, _stdin_reader

    class EndsSlowly(FakeLLM):  # the last piece, then a long wait for the end (EOS)
        def stream(self, messages, params):
            yield from super().stream(messages, params)
            time.sleep(3)

    home = Path(sys.argv[1])
    c = Companion.open(user="theo", model=EndsSlowly(["all of it, said."]), home=home)
    ChatLoop(c, _stdin_reader(sys.stdin), sys.stdout, sys.stderr, home).run(greet=False)
    """
)


def test_a_reply_printed_in_full_is_stored_even_if_killed_at_once(companion_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", ENDS_SLOWLY, str(companion_home)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("say it all\n")
    proc.stdin.flush()
    seen = ""
    deadline = time.monotonic() + 60
    while "said." not in seen and time.monotonic() < deadline:
        seen += proc.stdout.read(1)
    proc.kill()
    proc.communicate(timeout=30)
    assert "said." in seen
    turns = db_rows(companion_home, "select role, content from turns order by id")
    assert turns == [("user", "say it all"), ("assistant", "all of it, said.")]


# -- /retry (issue 13): another reply to the last message, shown like any reply ------

FIRST = "Hello there. It is good to hear from you."
SECOND = "Hey you. How was your day, really?"
THIRD = "Oh, hi! I was just thinking about you."


def test_retry_replaces_the_reply_and_is_printed_and_spoken_like_one(
    companion_home: Path,
) -> None:
    import io

    from companion.cli.chat import ChatLoop
    from companion.testing import FakeLLM, open_test_companion
    from companion.voice.speaker import NoSpeaker, Speaker
    from companion.voice.tts.fake import FakeTTS

    c = open_test_companion(companion_home, llm=FakeLLM([FIRST, SECOND, THIRD]), user="theo")
    tts = FakeTTS()
    lines = iter(["hi", "/retry", "/retry"])

    def read(_prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out, err = io.StringIO(), io.StringIO()
    loop = ChatLoop(c, read, out, err, companion_home, Speaker(NoSpeaker(), tts))
    assert loop.run(greet=False) == 0
    loop.finish_speaking()
    c.close()
    printed = out.getvalue()
    assert printed == f"Samantha: {FIRST}\nSamantha: {SECOND}\nSamantha: {THIRD}\n"
    assert "(reply 2 of 2; /retry for another)" in err.getvalue()
    assert "(reply 3 of 3; /retry for another)" in err.getvalue()
    assert " ".join(tts.texts).split()[-len(THIRD.split()):] == THIRD.split()  # spoken too
    turns = db_rows(companion_home, "select role, content, interrupted from turns order by id")
    assert turns == [("user", "hi", 0), ("assistant", THIRD, 0)]


def test_retry_with_no_reply_yet_is_one_line_and_changes_nothing(companion_home: Path) -> None:
    out = run(companion_home, "chat", "--model", "fake", "--user", "theo",
              stdin="/retry\nhello\n/new\n/retry\n")
    assert out.returncode == 0, out.stderr
    errors = [line for line in out.stderr.splitlines() if "retry" in line]
    assert errors == ["(error: nothing to retry yet: say something first)"] * 2
    assert "Traceback" not in out.stderr
    turns = db_rows(companion_home, "select role, content from turns order by id")
    # the first greeting, the answer to "hello", the second session's greeting: all kept
    assert [r for r, _ in turns] == ["assistant", "user", "assistant", "assistant"]
    assert turns[1] == ("user", "hello")
    assert out.stdout.count("Samantha: ") == 3  # no reply printed for either /retry


RETRY_CHAT = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    from companion import Companion, FakeLLM
    from companion.cli.chat import ChatLoop, _stdin_reader
    llm = FakeLLM([{FIRST!r}, {LONG_STORY!r}], delay=0.05)
    home = Path(sys.argv[1])
    c = Companion.open(user="theo", model=llm, home=home)
    ChatLoop(c, _stdin_reader(sys.stdin), sys.stdout, sys.stderr, home).run(greet=False)
    c.close()
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_a_retry_keeps_the_new_reply_as_interrupted(companion_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", RETRY_CHAT, str(companion_home)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("hi\n/retry\n")
    proc.stdin.flush()
    seen = ""
    deadline = time.monotonic() + 30
    while "three" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.read(1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    rest, err = proc.communicate("and then?\n", timeout=60)
    assert proc.returncode == 0, err
    assert f"Samantha: {FIRST}\nSamantha: one two three" in seen
    assert "[stopped]" in seen + rest
    turns = db_rows(companion_home, "select role, content, interrupted from turns order by id")
    assert turns[0] == ("user", "hi", 0)
    role, content, interrupted = turns[1]
    assert role == "assistant" and interrupted == 1 and "three" in str(content)
    assert FIRST not in str(content) and len(str(content)) < len(LONG_STORY)
    assert turns[2][:2] == ("user", "and then?") and len(turns) == 4
