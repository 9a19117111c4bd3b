"""The plain rules that spot a bad reply (companion.replycheck)."""

from __future__ import annotations

import pytest

from companion.replycheck import (
    claims,
    common_subsequence,
    help_desk,
    introduces_herself,
    is_echo,
    longest_run,
    repeats,
    sentences,
    words,
)

THEO = "I write letters for other people at a company called BeautifulHandwrittenLetters.com."


def test_words_are_lower_case_without_punctuation_and_keep_apostrophes() -> None:
    assert words("Hi, I\u2019m THEO!  It's 5 o'clock.") == [
        "hi", "i'm", "theo", "it's", "5", "o'clock",
    ]  # fmt: skip
    assert words("...!?") == []


def test_longest_run_and_common_subsequence() -> None:
    a = words("the cat sat on the mat")
    assert longest_run(a, words("a cat sat on a rug")) == 3
    assert longest_run(a, words("dogs bark")) == 0
    assert common_subsequence(words("a b c d"), words("a x c y d")) == 3
    assert common_subsequence([], words("a b")) == 0


def test_echo_a_run_of_six_of_the_users_words() -> None:
    reply = "Oh, so you write letters for other people at a company? Lovely."
    assert is_echo(reply, THEO)


def test_echo_most_of_the_message_as_a_subsequence() -> None:
    message = "my sister moved to Berlin last spring"
    # no run of 6, but 6 of 7 words in order
    reply = "Your sister, she moved away to Berlin, was it last spring?"
    assert longest_run(words(reply), words(message)) < 6
    assert is_echo(reply, message)


@pytest.mark.parametrize(
    "reply",
    [
        "Letters by hand? That's rare now. Do you like it?",
        "A company that writes for people, how romantic.",  # 5 words in order, not 6
        "",
    ],
)
def test_not_echo(reply: str) -> None:
    assert not is_echo(reply, THEO)


def test_a_short_message_is_not_echoed_by_sharing_its_words() -> None:
    # under 5 words: only a run of 6 counts, and 4 words cannot make one
    assert not is_echo("I am tired, you say? I am tired too.", "I am so tired")
    assert not is_echo("anything", "")


def test_echo_thresholds_are_settings() -> None:
    reply = "you write letters for people"
    assert not is_echo(reply, THEO)
    assert is_echo(reply, THEO, run=3)


def test_introduces_herself() -> None:
    assert introduces_herself("Hi Theo, I'm Samantha.", "Samantha")
    assert introduces_herself("Hello! My name is samantha and I love rain", "Samantha")
    assert introduces_herself("I am Samantha.", "Samantha")
    # a typographic apostrophe, as some models write it
    assert introduces_herself("Hey, it\u2019s Samantha here", "Samantha")
    assert introduces_herself("Hi Theo, I\u2019m Samantha.", "Samantha")
    assert not introduces_herself("Samantha is a lovely name, isn't it?", "Samantha")
    assert not introduces_herself("I'm Samanthas biggest fan", "Samantha")
    assert not introduces_herself("I'm happy you called.", "Samantha")


def test_identity_claims_one_of_the_users_sentences() -> None:
    mine = ["I went through a divorce last year.", "I have two cats named Salt and Pepper."]
    assert claims("Hi! I went through a divorce last year too.", mine)
    assert claims("Well, I have two cats named Salt, you know.", mine)
    assert not claims("A divorce is hard. How long ago was it?", mine)
    assert not claims("Cats named Salt and Pepper!", mine, run=6)
    assert not claims("anything", [])


def test_repeats_a_run_of_four_words() -> None:
    looping = "I have a hobby that I enjoy, and I have a hobby that I love."
    assert repeats(looping)
    assert not repeats("I have a hobby. You have one too, I bet.")
    assert repeats("la la la la la", n=2)
    assert not repeats("one two three")


def test_sentences() -> None:
    assert sentences("Hi. How are you?! I'm fine\u2026 and you") == [
        "Hi.", "How are you?!", "I'm fine\u2026", "and you",
    ]  # fmt: skip
    assert sentences("...") == []
    assert sentences("") == []


@pytest.mark.parametrize(
    ("reply", "phrase"),
    [
        ("As an AI, I don't have a job.", "as an ai"),
        ("It's important to remember that you are not alone.", "important to remember"),
        ("I\u2019m just here to listen.", "i'm just here to"),
        ("Let me know if you need anything!", "let me know if"),
        ("How can I assist you today?", "how can i assist"),
        ("Hello, Theo! I'm an AI created by Samantha.", "an ai created by"),
        ("I am Qwen, made by Alibaba Cloud.", "alibaba cloud"),
        ("I'm sorry, but I don't have enough context to fully understand your situation.",
         "enough context"),
        ("Could you please provide more details about the divorce?", "could you please provide"),
    ],
)
def test_help_desk_phrases(reply: str, phrase: str) -> None:
    assert help_desk(reply) == phrase


@pytest.mark.parametrize(
    "reply",
    ["Ha, you'd be a terrible help desk.", "I'm here. Tell me.", "Remember that song?", "",
     "I loved the painting she created by the sea."],
)
def test_not_help_desk(reply: str) -> None:
    assert help_desk(reply) is None
