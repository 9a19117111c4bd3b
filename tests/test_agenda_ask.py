"""Questions about the agenda are told from the store; questions to her are not
taken for them (companion.agenda.ask)."""

from __future__ import annotations

import pytest

from companion.agenda.ask import is_agenda_question


@pytest.mark.parametrize("text", [
    "What's on my agenda?", "what is on my schedule today", "what do I have tomorrow?",
    "any reminders?", "show me my agenda", "what do I have planned this week",
    "am I free tomorrow?", "What's coming up?", "what did I ask you to remind me",
    "what are my plans", "What have I got on today?", "What do I have on my agenda this week?",
    "what have I got in my diary tomorrow",
])
def test_questions_about_the_agenda(text: str) -> None:
    assert is_agenda_question(text)


@pytest.mark.parametrize("text", [
    "What is your favorite thing to do?", "What are your plans for the weekend?",
    "what's coming up for you?", "What do I have to do to get better?",
    "what did you do today?", "What is the plan?", "I have a lot to do tomorrow",
    "What do I have in common with him?", "Any plans for the weekend?",
    "what's on my mind is my mother", "What do I have in my fridge?", "x" * 400,
])
def test_other_questions_are_not(text: str) -> None:
    assert not is_agenda_question(text)
