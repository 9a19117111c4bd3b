"""The persona's example dialogue as earlier turns, and questions about what she remembers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from companion import FakeLLM
from companion.persona import examples, load_persona
from companion.persona.model import Persona
from companion.prompt import PromptInput, build_prompt
from companion.testing import open_test_companion
from companion.types import Message

START = "Those were examples"


def count(text: str) -> int:
    return len(text) // 4 + 1


def varied() -> FakeLLM:
    """A model whose every reply is new (so the reply guard never steps in)."""
    n = itertools.count()
    return FakeLLM(responder=lambda _m: f"Answer {next(n)} is short.")


def example_part(call: Sequence[Message]) -> list[Message]:
    """The messages of ``call`` from after the system message to the chat-start line."""
    end = next((i for i, m in enumerate(call) if START in m.content), None)
    return list(call[1 : end + 1]) if end is not None else []


def samantha(**changes: str) -> Persona:
    return replace(load_persona("samantha"), **changes)


# -- in the dialog ---------------------------------------------------------------


def test_the_personas_examples_follow_the_system_message(companion_home: Path) -> None:
    llm = varied()
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        reply = c.say("hello there")
        reply.text()
        assert reply.notes == ()
        pairs = examples(c.persona, "theo")
    call = llm.calls[0]
    assert call[0].role == "system" and "You are Samantha" in call[0].content
    shown = example_part(call)
    assert [(m.role, m.content) for m in shown[:-1]] == pairs
    assert len(pairs) == 8 and pairs[0] == ("user", "I can't sleep.")
    assert shown[-1].role == "system"
    assert shown[-1].content.startswith("(Those were examples of how Samantha talks.")
    assert call[-1] == Message("user", "hello there")


def test_examples_drop_out_all_at_once_when_the_history_needs_room(
    companion_home: Path,
) -> None:
    llm = varied()
    with open_test_companion(
        companion_home, llm=llm, user="theo", context_tokens=1024, max_tokens=64
    ) as c:
        for i in range(12):
            c.say(f"message number {i} about my day and what happened at work").text()
    sizes = [len(example_part(call)) for call in llm.calls]
    assert set(sizes) == {9, 0}, sizes  # all of them, or none
    gone = sizes.index(0)
    assert gone > 1 and all(s == 0 for s in sizes[gone:])  # and they do not come back
    # they go before any of the real history does
    users = [m.content for m in llm.calls[gone] if m.role == "user"]
    assert users[0] == "message number 0 about my day and what happened at work"
    # while they were there, each prompt began with the whole one before (prefix reuse)
    for before, after in itertools.pairwise(llm.calls[:gone]):
        assert after[: len(before)] == before


def test_a_persona_without_examples_talks(companion_home: Path) -> None:
    llm = varied()
    with open_test_companion(
        companion_home, llm=llm, user="theo", persona=samantha(mes_example="")
    ) as c:
        reply = c.say("hello there")
        assert reply.text() == "Answer 0 is short."
        assert reply.notes == ()
    assert not any(START in m.content for m in llm.calls[0])
    assert llm.calls[0][1].role == "system" and llm.calls[0][1].content.startswith("(Private")


def test_unreadable_examples_give_one_note_once(companion_home: Path) -> None:
    llm = varied()
    persona = samantha(mes_example="Samantha likes rain and long walks by the sea.")
    with open_test_companion(companion_home, llm=llm, user="theo", persona=persona) as c:
        first = c.say("hello there")
        assert first.text() == "Answer 0 is short."
        second = c.say("how are you")
        second.text()
    assert len(first.notes) == 1 and "\n" not in first.notes[0]
    assert first.notes[0].startswith("The persona's example dialogue was left out")
    assert second.notes == ()
    assert not any("likes rain" in m.content or START in m.content for m in llm.calls[0])


def test_examples_longer_than_the_budget_are_skipped_with_a_note(companion_home: Path) -> None:
    long = "<START>\n{{user}}: hi\n{{char}}: " + "la " * 3000
    llm = varied()
    with open_test_companion(
        companion_home, llm=llm, user="theo", persona=samantha(mes_example=long)
    ) as c:
        first = c.say("hello there")
        assert first.text() == "Answer 0 is short."
        second = c.say("how are you")
        second.text()
    assert len(first.notes) == 1 and "\n" not in first.notes[0]
    assert "does not fit" in first.notes[0]
    assert second.notes == ()
    assert not any(START in m.content or "la la" in m.content for m in llm.calls[0])


# -- in the prompt builder -------------------------------------------------------

EXAMPLES = (Message("user", "I can't sleep."), Message("assistant", "Me neither. Company?"))


def test_build_prompt_places_examples_and_counts_them() -> None:
    history = [Message("user", "hi"), Message("assistant", "hello")]
    p = build_prompt(
        PromptInput(system="You are Sam.", history=history, user="how are you", examples=EXAMPLES),
        count=count,
        budget=500,
    )
    assert p.examples_used == 3
    assert p.messages[1:3] == EXAMPLES and p.messages[3].role == "system"
    assert p.messages[4:6] == tuple(history) and p.history_dropped == 0
    assert p.notes == ()


def test_build_prompt_drops_examples_before_any_history() -> None:
    history = [Message("user" if i % 2 == 0 else "assistant", f"turn {i} " * 8) for i in range(6)]
    inp = PromptInput(system="You are Sam.", history=history, user="and now?", examples=EXAMPLES)
    full = build_prompt(inp, count=count, budget=500)
    assert full.examples_used == 3
    tight = build_prompt(inp, count=count, budget=full.tokens - 5)
    assert tight.examples_used == 0 and tight.history_dropped == 0
    assert not any(m in tight.messages for m in EXAMPLES)
    assert tight.notes == ()  # a conversation under way: no note, they just make room


def test_build_prompt_notes_examples_that_never_fit() -> None:
    big = (Message("user", "hi"), Message("assistant", "la " * 400))
    p = build_prompt(
        PromptInput(system="You are Sam.", user="hello", examples=big), count=count, budget=200
    )
    assert p.examples_used == 0 and len(p.notes) == 1 and "does not fit" in p.notes[0]


# -- "what do you remember about me?" ---------------------------------------------

FACTS = (
    "My name is Theo. I work as a letter writer at a company called Handwritten. "
    "My sister Anna lives in Berlin. I have a dog named Rex. I love jazz. "
    "I live in Lisbon. I went through a divorce last year."
)


def memory_lines(note: str) -> list[str]:
    return [line for line in note.splitlines() if line.startswith("- ")]


@pytest.mark.parametrize(
    "question",
    [
        "What do you remember about me?",
        "Do you remember what I do for a living?",
        "what do you know about me",
    ],  # fmt: skip
)
def test_a_memory_question_brings_the_users_facts(companion_home: Path, question: str) -> None:
    llm = varied()
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say(FACTS).text()
        c.say(question).text()
        assert len(c.memories()) >= 6
    note, asked, recap = llm.calls[-1][-3:]
    assert note.role == "system"
    facts = memory_lines(note.content)
    assert len(facts) > 2
    text = "\n".join(facts)
    for word in ("letter writer", "Lisbon", "jazz", "divorce"):
        assert word in text
    assert "is asking what you remember" in note.content
    assert (asked.role, asked.content) == ("user", question)
    # after the question, the facts once more, as she would say them to him
    assert recap.role == "system" and "you live in Lisbon" in recap.content
    assert "User" not in recap.content and "Theo's" not in recap.content
    # and her answer starts from them
    assert llm.params[-1].prefill == "You told me you"


def test_an_ordinary_message_brings_at_most_two_new_facts(companion_home: Path) -> None:
    llm = varied()
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say(FACTS).text()
        c.say("How was your evening, by the way?").text()
    note = llm.calls[-1][-2]
    assert note.role == "system"
    assert 1 <= len(memory_lines(note.content)) <= 2
    assert "is asking what you remember" not in note.content
