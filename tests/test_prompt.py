"""build_prompt: layout, budget, and what gets dropped first."""

from __future__ import annotations

import pytest

from companion.errors import ConfigError
from companion.llm.base import MESSAGE_OVERHEAD_TOKENS
from companion.prompt import PromptInput, build_prompt, truncate_middle
from companion.types import Message


def count(text: str) -> int:
    return (len(text) + 3) // 4


def history(n: int, words: int = 10) -> list[Message]:
    return [
        Message("user" if i % 2 == 0 else "assistant", f"message {i} " + "word " * words)
        for i in range(n)
    ]


def test_layout_puts_the_changing_note_after_the_history() -> None:
    p = build_prompt(
        PromptInput(
            system="You are Sam.",
            history=history(4),
            memories=["User's sister is called Maya."],
            state="You feel calm.",
            clock="Tuesday",
            user="hi",
        ),
        count=count,
        budget=2000,
    )
    roles = [m.role for m in p.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "system", "user"]
    assert p.messages[0].content == "You are Sam."
    note = p.messages[-2].content
    assert "Maya" in note and "You feel calm." in note and "Tuesday" in note
    assert p.messages[-1] == Message("user", "hi")
    assert p.memories_used == 1 and p.history_used == 4 and p.history_dropped == 0


def test_prompt_never_exceeds_the_budget() -> None:
    for budget in (200, 400, 800, 1600):
        p = build_prompt(
            PromptInput(system="You are Sam.", history=history(200), memories=["a fact"] * 20,
                        user="hello " * 50),
            count=count,
            budget=budget,
        )
        real = sum(count(m.content) + MESSAGE_OVERHEAD_TOKENS for m in p.messages)
        assert real == p.tokens <= budget


def test_oldest_history_is_dropped_first() -> None:
    h = history(100)
    p = build_prompt(PromptInput(system="S", history=h, user="x"), count=count, budget=500)
    kept = p.messages[1 : 1 + p.history_used]
    assert kept == tuple(h[p.history_dropped :])
    assert kept[0].role == "user"
    assert p.history_dropped > 0


def test_history_window_moves_in_blocks_so_the_prefix_stays_put() -> None:
    h = history(120)
    starts = []
    for n in range(60, 120, 2):
        p = build_prompt(PromptInput(system="S", history=h[:n], user="x"), count=count, budget=600)
        starts.append(p.history_dropped)
    # the first kept message changes only every few turns, not every turn
    changes = sum(1 for a, b in zip(starts, starts[1:], strict=False) if a != b)
    assert changes <= len(starts) // 3


def test_long_message_is_cut_in_the_middle_with_a_note() -> None:
    text = "START " + "blah " * 20000 + " END"
    p = build_prompt(PromptInput(system="S", user=text), count=count, budget=1000)
    seen = p.messages[-1].content
    assert seen.startswith("START") and seen.endswith("END")
    assert "characters omitted" in seen
    assert p.user_omitted_chars > 90000
    assert p.notes and "100,010" in p.notes[0]
    assert p.tokens <= 1000


def test_memories_that_do_not_fit_are_dropped_least_relevant_first() -> None:
    facts = [f"fact number {i} " + "x" * 200 for i in range(30)]
    p = build_prompt(PromptInput(system="S", memories=facts, user="hi"), count=count, budget=400)
    assert 0 < p.memories_used < 30
    assert "fact number 0 " in p.messages[-2].content
    assert f"fact number {p.memories_used} " not in p.messages[-2].content


def test_persona_too_big_for_the_window_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="context_tokens"):
        build_prompt(PromptInput(system="x" * 10000, user="hi"), count=count, budget=500)


def test_greeting_prompt_has_no_user_message() -> None:
    p = build_prompt(
        PromptInput(system="S", history=history(2), instruction="Greet them."),
        count=count,
        budget=500,
    )
    assert p.messages[-1].role == "system" and "Greet them." in p.messages[-1].content


def test_truncate_middle_keeps_short_text() -> None:
    assert truncate_middle("short", 10, count, "[{omitted}]") == "short"
    assert count(truncate_middle("y" * 5000, 100, count, "[{omitted}]")) <= 100


def test_note_is_a_delta_of_what_the_kept_notes_already_say() -> None:
    base = PromptInput(system="S", state="You feel calm.\nYou met today.", clock="Mon 10:00",
                       memories=["Likes tea."], post_history="Be brief.", user="hi")
    first = build_prompt(base, count=count, budget=2000)
    assert first.note is not None and "Likes tea." in first.note.text
    h = [Message("user", "hi"), Message("assistant", "hello")]
    second = build_prompt(
        PromptInput(system="S", state="You feel calm.\nYou met today.", clock="Mon 10:00",
                    memories=["Likes tea."], post_history="Be brief.", user="and you?",
                    history=h, history_notes=[first.note, None]),
        count=count, budget=2000,
    )
    assert second.note is None  # nothing new: no note, the prompt only grows
    assert second.messages[: len(first.messages)] == first.messages
    moody = build_prompt(
        PromptInput(system="S", state="You feel sad.\nYou met today.", clock="Mon 10:00",
                    memories=["Likes tea.", "Has a cat."], user="x", history=h,
                    history_notes=[first.note, None]),
        count=count, budget=2000,
    )
    assert moody.note is not None
    assert "You feel sad." in moody.note.text and "You met today." not in moody.note.text
    assert "Has a cat." in moody.note.text and "Likes tea." not in moody.note.text


def test_what_a_dropped_note_said_is_said_again() -> None:
    first = build_prompt(PromptInput(system="S", memories=["Likes tea."], user="m0"),
                         count=count, budget=2000)
    h = history(40, words=30)
    notes = [first.note] + [None] * 39
    later = build_prompt(
        PromptInput(system="S", memories=["Likes tea."], user="x", history=h,
                    history_notes=notes),
        count=count, budget=400,
    )
    assert later.history_dropped > 0
    assert later.note is not None and "Likes tea." in later.note.text


def test_a_memory_quoting_a_message_in_the_window_is_left_out() -> None:
    h = history(4)
    p = build_prompt(
        PromptInput(system="S", history=h, memories=["they said: message 2", "Has a cat."],
                    memory_quotes=[2, None], user="x"),
        count=count, budget=2000,
    )
    assert p.note is not None and "message 2" not in p.note.text and "Has a cat." in p.note.text
