"""The dialog manager against the shipped fakes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from companion import Companion, FakeLLM, InputError, StoreCorruptError
from companion.testing import FakeClock, open_test_companion
from companion.types import GenerationParams, Message


def rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(home / "companion.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_one_turn_streams_and_is_stored(companion_home: Path) -> None:
    text = "Hi Theo, lovely to meet you. What brings you here?"
    llm = FakeLLM([text])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        reply = c.say("Hi, I'm Theo.")
        chunks = list(reply)
        assert len(chunks) > 1 and "".join(chunks) == text
        assert reply.result is not None and reply.result.role == "assistant"
    turns = rows(companion_home, "select role, content, interrupted from turns order by id")
    assert turns == [("user", "Hi, I'm Theo.", 0), ("assistant", text, 0)]


def test_a_reply_that_starts_copying_the_private_note_is_cut_there(companion_home: Path) -> None:
    leaked = (
        "You write letters. What you remember about Theo (from earlier conversations; "
        "bring it up when it fits):\n- secret"
    )
    note = "Noted. (Private notes for Samantha; Theo does not see them.) It is noon."
    llm = FakeLLM(["Hello.", leaked, note])
    with open_test_companion(companion_home, llm=llm, user="Theo") as c:
        c.say("Hi, I'm Theo.").text()
        assert c.say("What do I do?").text().strip() == "You write letters."
        assert c.say("Anything else?").text().strip() == "Noted."
    stored = rows(companion_home, "select content from turns where role = 'assistant'")
    assert stored[-2:] == [("You write letters.",), ("Noted.",)]


def test_prompt_uses_the_models_messages_in_order(companion_home: Path) -> None:
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say("first").text()
        c.say("second").text()
    last = llm.calls[-1]
    assert last[0].role == "system" and "Samantha" in last[0].content
    # the persona's example dialogue comes first, then the real conversation
    assert [m.content for m in last if m.role == "user"][-2:] == ["first", "second"]
    first = llm.calls[0]
    assert first[-2].role == "system"  # the private note sits just before the new message
    # ...and stays there, unchanged, so the second prompt starts with the whole first one
    assert last[: len(first)] == first


def test_private_note_says_only_what_is_new(companion_home: Path) -> None:
    llm = FakeLLM()
    clock = FakeClock(datetime(2026, 3, 1, 20, 0, tzinfo=UTC))
    with open_test_companion(companion_home, llm=llm, user="Theo", clock=clock) as c:
        c.say("My name is Theo and I live in Lisbon.").text()
        for text in ("ok", "fine", "sure", "yes", "right", "go on"):
            clock.advance(seconds=20)
            c.say(text).text()
    notes = [call[-2].content if call[-2].role == "system" else "" for call in llm.calls]
    assert "It is" in notes[0] and "Reply as Samantha" in notes[0]
    # the facts learned from the first message are new to the notes once
    assert "Lisbon" in notes[1] and "It is" not in notes[1]
    # calm small talk a few seconds apart: no new note until the reminder is due
    assert notes[2:4] == ["", ""]
    assert "Reply as Samantha" in notes[4] and "Lisbon" not in notes[4]
    assert notes[5] == ""
    # each prompt extends the one before it (after the reply that was given)
    for before, after in zip(llm.calls, llm.calls[1:], strict=False):
        assert after[: len(before)] == before


def test_empty_message_makes_no_model_call_and_stores_nothing(companion_home: Path) -> None:
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm) as c, pytest.raises(InputError):
        c.say("   \n\x1b[2J ")
    assert llm.calls == []
    assert rows(companion_home, "select count(*) from turns") == [(0,)]


def test_control_characters_never_reach_model_or_store(companion_home: Path) -> None:
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm) as c:
        c.say("hello\x1b]0;pwned\x07 there\x00").text()
    assert llm.calls[-1][-1].content == "hello there"
    assert rows(companion_home, "select content from turns where role='user'") == [("hello there",)]


def test_facts_are_recalled_into_the_prompt_when_relevant(companion_home: Path) -> None:
    clock = FakeClock()
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm, user="theo", clock=clock) as c:
        c.say("My sister is called Maya.").text()
        for i in range(3):
            c.say(f"Random chat number {i} about the weather.").text()
        clock.advance(days=6)
    with open_test_companion(companion_home, llm=llm, user="theo", clock=clock) as c:
        c.say("I'm going to see my sister this weekend").text()
        note = llm.calls[-1][-2].content
        assert "Maya" in note
        assert any("Maya" in m.text for m in c.memories())


def test_mood_moves_with_the_conversation_and_shapes_the_prompt(companion_home: Path) -> None:
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm) as c:
        before = c.state.mood
        c.say("I got the job!!! I'm so happy, this is wonderful!").text()
        happy = c.state.mood
        note_happy = llm.calls[-1][-2].content
        for _ in range(3):
            c.say("My dog died today. I feel terrible and alone.").text()
        sad = c.state.mood
        note_sad = llm.calls[-1][-2].content
    assert happy.valence > before.valence
    assert sad.valence < happy.valence
    assert note_happy != note_sad


def test_state_and_relationship_persist_per_user(companion_home: Path) -> None:
    clock = FakeClock()
    with open_test_companion(companion_home, user="theo", clock=clock) as c:
        c.say("hello").text()
        c.say("how are you").text()
    clock.advance(days=3)
    with open_test_companion(companion_home, user="theo", clock=clock) as c:
        rel = c.state.relationship
        assert rel.turns == 2 and rel.sessions == 2
        assert "3 days" in c.mood() or "3 day" in c.mood()
    with open_test_companion(companion_home, user="maya", clock=clock) as c:
        assert c.state.relationship.turns == 0


def test_first_greeting_is_the_personas_first_message(companion_home: Path) -> None:
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        text = c.greet().text()
        assert text and "{{" not in text
        assert llm.calls == []  # no model call for a first meeting
        assert c.persona.name in c.persona.first_mes or text


def test_returning_greeting_refers_to_the_last_session(companion_home: Path) -> None:
    clock = FakeClock()
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm, user="theo", clock=clock) as c:
        c.greet().text()
        c.say("My name is Theo. I have a job interview at the hospital tomorrow.").text()
    clock.advance(days=1)
    llm.enqueue(" How did the interview at the hospital go?")
    with open_test_companion(companion_home, llm=llm, user="theo", clock=clock) as c:
        greeting = c.greet()
        text = greeting.text()
    assert text == "Theo! How did the interview at the hospital go?"
    prompt = llm.calls[-1]
    assert any("interview at the hospital" in m.content for m in prompt if m.role == "user")
    assert "last talked 1 day ago" in prompt[-1].content
    assert llm.params[-1].prefill == "Theo!"
    stored = rows(companion_home, "select session_id, content from turns where role='assistant'")
    assert stored[-1][1] == text and stored[-1][0] != stored[0][0]


class Interrupting:
    """A backend whose generation is interrupted by Ctrl-C after two chunks."""

    name = "interrupting"
    context_length = 4096

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        yield "I was just "
        yield "saying"
        raise KeyboardInterrupt


def test_ctrl_c_keeps_the_partial_reply_marked_interrupted(companion_home: Path) -> None:
    with Companion.open(user="theo", model=Interrupting(), home=companion_home,
                        clock=FakeClock()) as c:
        reply = c.say("tell me a story")
        with pytest.raises(KeyboardInterrupt):
            reply.text()
        assert reply.interrupted
    turns = rows(companion_home, "select role, content, interrupted from turns order by id")
    assert turns == [("user", "tell me a story", 0), ("assistant", "I was just saying", 1)]


def test_unread_reply_is_finished_before_the_next_turn(companion_home: Path) -> None:
    llm = FakeLLM(["first answer", "second answer"])
    with open_test_companion(companion_home, llm=llm) as c:
        r1 = c.say("one")
        r2 = c.say("two")
        assert r1.done and r1.text() == "first answer"
        assert r2.text() == "second answer"
    contents = [r[0] for r in rows(companion_home, "select content from turns order by id")]
    assert contents == ["one", "first answer", "two", "second answer"]


def test_huge_paste_is_fitted_with_a_note_and_stored_whole(companion_home: Path) -> None:
    llm = FakeLLM(context_length=2048)
    paste = "BEGIN " + ("lorem ipsum dolor sit amet " * 4000) + " FINISH"
    with open_test_companion(companion_home, llm=llm, max_tokens=128) as c:
        reply = c.say(paste)
        reply.text()
    assert reply.notes and "saved" in reply.notes[0]
    sent = llm.calls[-1][-1].content
    assert sent.startswith("BEGIN") and sent.endswith("FINISH") and len(sent) < len(paste)
    assert sum(llm.count_tokens(m.content) + 8 for m in llm.calls[-1]) <= 2048 - 128
    assert rows(companion_home, "select length(content) from turns where role='user'") == [
        (len(paste),)
    ]


def test_forget_by_words_and_by_id(companion_home: Path) -> None:
    with open_test_companion(companion_home) as c:
        c.say("I love jazz. I hate mornings.").text()
        items = c.memories()
        assert {i.kind for i in items} >= {"like", "dislike"}
        removed = c.forget("jazz")
        # forgetting cascades: the fact and the message it came from
        assert "like" in {i.kind for i in removed}
        assert not any("jazz" in i.text for i in c.memories())
        left = c.memories()
        assert [i.id for i in c.forget(left[0].id)] == [left[0].id]


def test_export_contains_turns_and_facts(companion_home: Path) -> None:
    with open_test_companion(companion_home, user="theo") as c:
        c.say("My name is Theo and I work as a nurse.").text()
        data = c.export()
    text = repr(data)
    assert "nurse" in text and "Theo" in text


def test_corrupt_database_is_reported_and_left_untouched(companion_home: Path) -> None:
    companion_home.mkdir(parents=True)
    db = companion_home / "companion.db"
    garbage = b"this is not a database at all" * 100
    db.write_bytes(garbage)
    with pytest.raises(StoreCorruptError) as err:
        open_test_companion(companion_home)
    assert str(db) in str(err.value)
    assert db.read_bytes() == garbage


def test_prompt_says_how_long_since_the_last_talk(companion_home: Path) -> None:
    clock = FakeClock()
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm, user="theo", clock=clock) as c:
        c.say("hello").text()
    clock.advance(days=3)
    with open_test_companion(companion_home, llm=llm, user="theo", clock=clock) as c:
        c.say("I'm back").text()
    assert "you last talked 3 days ago" in llm.calls[-1][-2].content


def test_cut_reply_keeps_only_what_was_spoken_while_generating(tmp_path):
    from companion import FakeLLM
    from companion.testing import open_test_companion

    with open_test_companion(tmp_path, llm=FakeLLM(["One. Two. Three."])) as c:
        reply = c.say("hello there")
        it = iter(reply)
        next(it)
        turn = c.cut_reply(reply, "One.")
        assert turn is not None and turn.interrupted and turn.content == "One."
        assert c.history()[-1].content == "One."


def test_cut_reply_after_generation_amends_the_stored_turn(tmp_path):
    from companion import FakeLLM
    from companion.testing import open_test_companion

    with open_test_companion(tmp_path, llm=FakeLLM(["One. Two. Three."])) as c:
        reply = c.say("hello there")
        assert reply.text() == "One. Two. Three."
        turn = c.cut_reply(reply, "One. Two.")
        assert turn is not None and turn.interrupted and turn.content == "One. Two."
        last = c.history()[-1]
        assert (last.content, last.interrupted) == ("One. Two.", True)
        # nothing heard at all: the reply is not kept
        reply2 = c.say("and again")
        reply2.text()
        assert c.cut_reply(reply2, "") is None
        assert c.history()[-1].role == "user"


def test_prompt_for_is_what_say_sends_and_stores_nothing(tmp_path) -> None:
    from companion.testing import FakeClock, FakeLLM, open_test_companion

    llm = FakeLLM(["Hello Theo.", "Lyon is lovely."])
    c = open_test_companion(tmp_path, llm=llm, clock=FakeClock(), user="theo")
    c.say("Hi, I'm Theo.").text()
    before = (c.history(), c.memories(), c.state)
    messages, params = c.prompt_for("My sister Maya lives in Lyon.")
    assert (c.history(), c.memories(), c.state) == before
    c.say("My sister Maya lives in Lyon.").text()
    assert tuple(llm.calls[-1]) == messages
    assert params == llm.params[-1]


def test_a_returning_greeting_that_reads_its_instructions_aloud_is_sampled_again(
    tmp_path,
) -> None:
    from companion.testing import FakeClock, FakeLLM, open_test_companion

    clock = FakeClock()
    llm = FakeLLM(["Hello Theo."])
    c = open_test_companion(tmp_path, llm=llm, clock=clock, user="theo")
    c.say("Hi, I'm Theo and I keep bees.").text()
    c.close()
    clock.advance(days=1)
    llm.enqueue(" Greet Theo by name in one or two short sentences.",
                " Good to see you again. How are the bees?")
    again = open_test_companion(tmp_path, llm=llm, clock=clock, user="theo")
    greeting = again.greet().text()
    assert "Greet Theo by name" not in greeting
    assert "How are the bees?" in greeting
    assert again.last_guard is not None and "note" in again.last_guard.problems


def test_a_reply_reading_an_earlier_note_aloud_is_sampled_again(tmp_path) -> None:
    """Her mood line is written into a note only when it changes; a later reply
    that reads it back ("You feel warm and curious right now.") is still a note
    read aloud."""
    from companion.testing import FakeClock, FakeLLM, open_test_companion

    llm = FakeLLM(["Hello Theo."])
    c = open_test_companion(tmp_path, llm=llm, clock=FakeClock(), user="theo")
    c.say("Hi, I'm Theo.").text()
    first_notes = [m.content for m in llm.calls[0][1:] if m.role == "system"]
    mood = next(line for note in first_notes for line in note.splitlines()
                if line.startswith("You feel "))
    llm.enqueue(f" {mood}", " Simple things are restful. What did you delete?")
    reply = c.say("I spent the day deleting old code.").text()
    last_notes = [m.content for m in llm.calls[-1][1:] if m.role == "system"]
    assert mood not in last_notes[-1]  # not this turn's note: an earlier one
    assert mood not in reply
    assert "What did you delete?" in reply
    assert c.last_guard is not None and "note" in c.last_guard.problems
