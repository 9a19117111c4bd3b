"""Facts worded for the reply, and questions about what she remembers."""

from __future__ import annotations

import pytest

from companion.recollect import about, is_memory_question, to_you


@pytest.mark.parametrize(
    ("fact", "said"),
    [
        ("User writes letters for other people.", "you write letters for other people"),
        ("User's ex-wife is called Catherine.", "your ex-wife is called Catherine"),
        ("User went through a divorce in 2025.", "you went through a divorce in 2025"),
        ("User has a dog.", "you have a dog"),
        ("User is a nurse.", "you are a nurse"),
        ("User watches horror movies.", "you watch horror movies"),
        ("User studies psychology.", "you study psychology"),
        ("User goes to yoga on Tuesdays.", "you go to yoga on Tuesdays"),
        ("User doesn't like mornings.", "you don't like mornings"),
        ("User's sister Maya lives with User.", "your sister Maya lives with you"),
    ],
)
def test_a_fact_as_said_to_the_user(fact: str, said: str) -> None:
    assert to_you(fact) == said


def test_a_fact_names_the_user() -> None:
    assert about("User's sister Maya loves jazz.", "Theo") == "Theo's sister Maya loves jazz."
    assert about("User lives in Lisbon.", "") == "User lives in Lisbon."
    assert about("Username is taken.", "Theo") == "Username is taken."


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("What do you remember about me?", True),
        ("Do you remember what I do for a living?", True),
        ("do you still remember my sister's name", True),
        ("what do you know about me", True),
        ("I remember the sea.", False),
        ("Do you like the sea?", False),
    ],
)
def test_memory_questions(text: str, asked: bool) -> None:
    assert is_memory_question(text) is asked
