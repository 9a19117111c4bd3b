"""``Companion.retry()``: another reply to the last message (SillyTavern's swipe)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from companion import FakeLLM, InputError
from companion.testing import open_test_companion
from companion.types import Message


def turns(home: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(home / "companion.db")
    try:
        return con.execute("select role, content from turns order by id").fetchall()
    finally:
        con.close()


def contents(messages: Sequence[Message]) -> list[str]:
    return [m.content for m in messages]


def test_retry_replaces_the_last_reply_and_keeps_the_old_one(companion_home: Path) -> None:
    llm = FakeLLM(["Hello there.", "Rain again? I like it.", "Rain makes me sleepy."])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say("hi").text()
        c.say("it's raining").text()
        reply = c.retry()
        assert reply.text() == "Rain makes me sleepy."
        assert reply.result is not None and reply.result.role == "assistant"
        assert c.swipes == ["Rain again? I like it."]
        assert [t.content for t in c.history()][-2:] == ["it's raining", "Rain makes me sleepy."]
    assert turns(companion_home) == [
        ("user", "hi"), ("assistant", "Hello there."),
        ("user", "it's raining"), ("assistant", "Rain makes me sleepy."),
    ]  # fmt: skip


def test_retry_asks_with_the_same_prompt_and_another_attempt(companion_home: Path) -> None:
    llm = FakeLLM(["Hello there.", "Rain again? I like it.", "Rain makes me sleepy."])
    with open_test_companion(companion_home, llm=llm, user="theo", seed=5) as c:
        c.say("hi").text()
        c.say("it's raining").text()
        c.retry().text()
    asked, again = llm.calls[1], llm.calls[2]
    # the old reply is not in it, and the prompt is the one first answered (the cache holds)
    assert "Rain again? I like it." not in contents(again)
    assert again == asked and again[-1].content == "it's raining"
    first, retried = llm.params[1], llm.params[2]
    assert retried.seed is not None and retried.seed != first.seed
    assert retried.repetition_penalty > first.repetition_penalty
    assert retried.dry_multiplier > first.dry_multiplier
    assert retried.echo_penalty > first.echo_penalty
    assert retried.echo_text == first.echo_text == "it's raining"


def test_each_retry_is_a_new_attempt_and_a_new_message_clears_swipes(
    companion_home: Path,
) -> None:
    llm = FakeLLM(["one.", "two.", "three.", "fine."])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say("hello there").text()
        c.retry().text()
        c.retry().text()
        assert c.swipes == ["one.", "two."]
        # stronger than the first reply, but not without bound; and never the same seed
        first, retried, again = llm.params[:3]
        assert retried.echo_penalty > first.echo_penalty
        assert again.echo_penalty == retried.echo_penalty
        c.say("and now?").text()
        assert c.swipes == []
    assert [t[1] for t in turns(companion_home)] == ["hello there", "three.", "and now?", "fine."]


def test_the_next_prompt_has_the_new_reply_not_the_old(companion_home: Path) -> None:
    llm = FakeLLM(["Old answer here.", "New answer here.", "Sure."])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say("tell me something").text()
        c.retry().text()
        c.say("and then?").text()
    later = contents(llm.calls[-1])
    assert "New answer here." in later and "Old answer here." not in later


def test_retry_of_an_unread_reply_finishes_it_first(companion_home: Path) -> None:
    llm = FakeLLM(["first try.", "second try."])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        pending = c.say("hello there")
        assert c.retry().text() == "second try."
        assert pending.done and c.swipes == ["first try."]
    assert [t[1] for t in turns(companion_home)] == ["hello there", "second try."]


@pytest.mark.parametrize("before", ["nothing", "greeting"])
def test_retry_with_no_reply_yet_says_so_and_changes_nothing(
    companion_home: Path, before: str
) -> None:
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        if before == "greeting":
            c.greet().text()
        stored = turns(companion_home)
        with pytest.raises(InputError) as err:
            c.retry()
        assert "\n" not in str(err.value)
        assert c.swipes == []
        assert turns(companion_home) == stored
    assert llm.calls == []


def test_retry_does_not_reach_into_the_last_session(companion_home: Path) -> None:
    llm = FakeLLM(["Bye then.", "Hello again!"])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say("see you tomorrow").text()
    with open_test_companion(companion_home, llm=llm, user="theo") as c, pytest.raises(InputError):
        c.retry()
    assert [t[1] for t in turns(companion_home)] == ["see you tomorrow", "Bye then."]


def test_retry_of_a_flagged_reply_is_fed_back_when_it_is_good(companion_home: Path) -> None:
    bad = "As an AI, I'm here to help you."
    llm = FakeLLM([bad, bad, bad, "Hm, rain. I love the smell.", "Me too."])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say("it's raining").text()
        assert c.last_guard is not None and c.last_guard.failed
        assert c.retry().text() == "Hm, rain. I love the smell."
        assert c.last_guard is not None and not c.last_guard.failed
        c.say("do you?").text()
    later = contents(llm.calls[-1])
    assert "Hm, rain. I love the smell." in later and bad not in later
