"""Hostile input through the terminal: messages, slash commands, ids and user names.

Whatever a user types, pipes or passes as an argument, the command answers in
one line (never a traceback), prints nothing raw (no escape byte reaches the
terminal), keeps reading (the next line is still answered), and a refused
input leaves the store as it was. Strategies: tests/hostile_inputs.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hostile_inputs import (
    NUMBERS,
    messages,
    one_line_error,
    raw_markers,
    run_cli,
    slash_commands,
    snapshot,
    user_ids,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from companion.errors import InputError
from companion.testing import FakeLLM, open_test_companion

# Each example runs a command in-process (about 0.1 s); bounded to keep the file short.
BOUNDED = settings(max_examples=15, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])
SENTINEL = "sentinel message"
# how the fake's answer to it starts (it goes on by how many messages came before)
ANSWER = "Mm, sentinel message."


_USERS = itertools.count()


def new_user() -> str:
    """A user of their own for one example: what she said in earlier examples does
    not read as her repeating herself to this one."""
    return f"h{next(_USERS)}"


def chat(lines: list[bytes], *extra: str, user: str = "h") -> tuple[int, str, str]:
    stdin = b"".join(line + b"\n" for line in lines)
    return run_cli(["chat", "--model", "fake", "--no-greeting", "--user", user, *extra], stdin)


def encoded(text: str) -> bytes:
    """The bytes a broken terminal or pipe would send for ``text`` (surrogates as-is)."""
    return text.encode("utf-8", "surrogatepass")


@BOUNDED
@given(text=messages())
def test_say_answers_or_refuses_in_one_line_and_a_refusal_changes_nothing(
    companion_home: Path, text: str
) -> None:
    c = open_test_companion(companion_home / "say", llm=FakeLLM())
    try:
        before = snapshot(companion_home / "say")
        try:
            reply = c.say(text)
        except InputError as exc:
            assert "\n" not in str(exc) and not raw_markers(str(exc))
            assert snapshot(companion_home / "say") == before
            return
        assert not raw_markers(reply.text())
        after = snapshot(companion_home / "say")
        assert len(after["turns"]) == len(before.get("turns", [])) + 2
    finally:
        c.close()


@BOUNDED
@given(line=messages().map(encoded) | st.binary(max_size=40))
def test_any_line_typed_into_the_chat_is_answered_or_refused_and_the_chat_goes_on(
    line: bytes,
) -> None:
    raw = line.replace(b"\n", b" ").replace(b"\r", b" ")
    status, out, err = chat([raw, SENTINEL.encode()], user=new_user())
    assert status == 0, err
    assert not raw_markers(out + err), (out, err)
    assert ANSWER in out  # the line after a hostile one is not lost
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


@BOUNDED
@given(command=slash_commands())
def test_slash_commands_answer_in_one_line_and_a_refusal_forgets_nothing(
    companion_home: Path, command: str
) -> None:
    user = new_user()
    seed_status, _, seed_err = chat([b"I love green tea and my cat is called Tom."], user=user)
    assert seed_status == 0, seed_err
    facts_before = snapshot(companion_home).get("facts")
    status, out, err = chat([encoded(command), SENTINEL.encode(), SENTINEL.encode()], user=user)
    assert "Traceback" not in err
    assert not raw_markers(out + err), (out, err)
    quits = command.strip().partition(" ")[0] in ("/quit", "/exit", "/bye")
    assert status == 0, err
    if not quits:
        assert ANSWER in out, (out, err)
    if "Forgot" not in out:
        assert snapshot(companion_home).get("facts") == facts_before


@BOUNDED
@given(
    action=st.sampled_from(["forget", "pin", "edit", "show"]),
    target=st.sampled_from(NUMBERS) | st.sampled_from(NUMBERS).map(lambda n: f"s{n}")
    | st.sampled_from(NUMBERS).map(lambda n: f"t{n}"),
)
def test_memory_commands_take_any_id_in_one_line(
    companion_home: Path, action: str, target: str
) -> None:
    chat([b"I love green tea and my cat is called Tom."])
    before = snapshot(companion_home)
    argv = ["memory", action, target, *(["new text"] if action == "edit" else []), "--user", "h"]
    status, out, err = run_cli(argv)
    assert status in (0, 2) and "Traceback" not in err
    assert one_line_error(status, err), err
    assert not raw_markers(out + err)
    if status == 2:
        assert snapshot(companion_home) == before


@BOUNDED
@given(user=user_ids())
def test_any_user_name_is_taken_or_refused_in_one_line(companion_home: Path, user: str) -> None:
    if "\x00" in user or not user.isprintable() and any("\ud800" <= c <= "\udfff" for c in user):
        user = user.encode("utf-8", "replace").decode("utf-8")  # argv cannot hold these
    before = snapshot(companion_home)
    status, out, err = run_cli(["chat", "--model", "fake", "--no-greeting", "--user", user],
                               SENTINEL.encode() + b"\n")
    assert status in (0, 2) and "Traceback" not in err
    assert not raw_markers(out + err), (out, err)
    if status == 2:
        assert one_line_error(status, err), err
        assert snapshot(companion_home) == before
    else:
        assert ANSWER in out
    status, out, err = run_cli(["memory", "list", "--user", user])
    assert status in (0, 2) and one_line_error(status, err) and not raw_markers(out + err)
