"""Text prepared for speech: speakable() and the streaming SentenceChunker."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.voice.speech_text import SentenceChunker, speakable

# ------------------------------------------------------------------ speakable


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("**Hello** there! *smiles* How are you?", "Hello there! How are you?"),
        ("I *really* like it.", "I really like it."),
        ("It was *amazing*!", "It was amazing!"),
        ("*leans in closer* You know what?", "You know what?"),
        ("Hi there *waves*", "Hi there"),
        ("Haha (laughs) okay [sighs] fine.", "Haha okay fine."),
        ("It is far (about 5 km) away.", "It is far (about 5 km) away."),
        ("# Plans\nSome text\n- one\n- two", "Plans. Some text. one. two"),
        ("1. Mix the flour\n2. Bake it", "Mix the flour. Bake it"),
        ("See [the docs](https://x.org/a).", "See the docs."),
        ("Read https://www.example.com/path?q=1.", "Read example.com."),
        ("Here:\n```python\nprint(1)\n```\nDone.", "Here: Done."),
        ("Use `pip install x` now.", "Use pip install x now."),
        ("Great job 😊🎉 :) <3", "Great job"),
        ("Family 👨‍👩‍👧 time!", "Family time!"),
        ("snake_case_name is _fine_.", "snake_case_name is fine."),
        ("Tom & Jerry", "Tom and Jerry"),
        ("> quoted wisdom", "quoted wisdom"),
        ("~~old~~ new", "old new"),
        ("  lots   of\tspace  ", "lots of space"),
    ],
)
def test_speakable(text: str, spoken: str) -> None:
    assert speakable(text) == spoken


@pytest.mark.parametrize("text", ["", "   ", "*smiles*", "(laughs)", "😊", "```x = 1```", "---"])
def test_nothing_to_say_is_empty(text: str) -> None:
    assert speakable(text) == ""


prose = st.text(alphabet="abcdefghij ABC,.?!'", max_size=80)
markdownish = st.text(alphabet="ab C.,!?*_`#[]()<>:;-~|&\n 😊h/tps", max_size=80)


@given(prose)
def test_plain_prose_keeps_its_words(text: str) -> None:
    assert re.findall(r"\w+", speakable(text)) == re.findall(r"\w+", text)


@given(markdownish)
def test_speakable_output_is_one_clean_line(text: str) -> None:
    out = speakable(text)
    assert out == out.strip()
    assert "\n" not in out and "  " not in out
    for mark in "*`#|~<>😊":
        assert mark not in out
    assert out == "" or any(c.isalnum() for c in out)


@given(markdownish)
def test_speakable_is_idempotent(text: str) -> None:
    once = speakable(text)
    assert speakable(once) == once


# ------------------------------------------------------------------ SentenceChunker


def stream(text: str, chunker: SentenceChunker | None = None) -> list[str]:
    """Push ``text`` one character at a time (the worst case for the chunker)."""
    c = chunker or SentenceChunker()
    out: list[str] = []
    for ch in text:
        out += c.push(ch)
    return out + c.flush()


def test_first_sentence_comes_out_as_soon_as_it_ends() -> None:
    c = SentenceChunker()
    assert c.push("Hello there") == []
    assert c.push(".") == []  # could be "Mr." or "3.14": wait for the next character
    assert c.push(" How") == ["Hello there."]
    assert c.push(" are you?") == []
    assert c.flush() == ["How are you?"]


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith met Dr. Jones today.",
        "Pi is 3.14 or so.",
        "Bring fruit, e.g. apples and pears.",
        "Wait... and then what happened?",
        "The U.S. government is big.",
        "J. R. R. Tolkien wrote it.",
        "He paid $3.50 for it.",
        "*smiles softly. Then waves.*",
        "She said (quietly. very quietly) hello.",
    ],
)
def test_no_cut_inside(text: str) -> None:
    assert stream(text) == [text]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("It is late. Go to bed now!", ["It is late.", "Go to bed now!"]),
        ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
        ("Really?! Yes, really, I mean it.", ["Really?!", "Yes, really, I mean it."]),
        ("I live in the U.S. The weather is nice.", ["I live in the U.S.", "The weather is nice."]),
        ("Well... I am not so sure now.", ["Well...", "I am not so sure now."]),
        ("Line one without stop\nLine two here", ["Line one without stop", "Line two here"]),
        ("*smiles.* Good to see you again.", ["*smiles.*", "Good to see you again."]),
        ("It was in 2023. A good year.", ["It was in 2023.", "A good year."]),
    ],
)
def test_cuts(text: str, sentences: list[str]) -> None:
    assert stream(text) == sentences


def test_short_fragments_after_the_first_are_joined_to_the_next() -> None:
    text = "Oh. I see. Yes. That is a lovely idea for the weekend. Ok."
    assert stream(text) == ["Oh.", "I see. Yes. That is a lovely idea for the weekend.", "Ok."]


def test_list_items_stay_whole() -> None:
    text = "Here is the plan:\n1. Buy the flour today\n2. Bake the bread tomorrow"
    assert stream(text) == ["Here is the plan:", "1. Buy the flour today",
                            "2. Bake the bread tomorrow"]


def test_code_block_comes_out_whole() -> None:
    text = "Try this:\n```py\nx = 1. \ny = 2\n```\nThat is all there is to it."
    out = stream(text)
    assert out == ["Try this:", "```py\nx = 1. \ny = 2\n```", "That is all there is to it."]
    assert [speakable(s) for s in out] == ["Try this:", "", "That is all there is to it."]


def test_long_first_sentence_is_cut_at_a_clause_for_early_audio() -> None:
    text = ("I have been thinking a lot about what you told me last week, about your sister "
            "and the move to Berlin, and honestly I think it could be good for both of you.")
    out = stream(text)
    assert out[0] == "I have been thinking a lot about what you told me last week,"
    assert " ".join(out) == text


def test_flush_resets_for_the_next_reply() -> None:
    c = SentenceChunker()
    assert stream("First reply. Second part of it.", c) == ["First reply.",
                                                           "Second part of it."]
    assert stream("Oh.", c) == ["Oh."]


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        SentenceChunker(min_chars=50, first_max_chars=40)


words = st.text(alphabet="abcdefgh", min_size=1, max_size=12) | st.sampled_from(
    ["Mr.", "Dr.", "e.g.", "U.S.", "3.14", "Yes.", "no!", "what?!", "well...", "(laughs)",
     "*smiles*", '"quote."', "etc.", "A.", "1.", ",", "\n", "Oh.", "I", "The"]
)
texts = st.lists(words, max_size=60).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(texts, st.data())
def test_chunking_keeps_every_word_and_ignores_how_the_stream_is_split(
    text: str, data: st.DataObject
) -> None:
    whole = SentenceChunker()
    expected = whole.push(text) + whole.flush()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    c = SentenceChunker()
    got: list[str] = []
    for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True):
        got += c.push(text[a:b])
    got += c.flush()
    assert got == expected
    assert " ".join(got).split() == text.split()
    assert all(s and s == s.strip() for s in got)
    assert all(len(s) <= 180 for s in got)


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Oh, that sounds lovely. Tell me more.", ["Oh,", "that sounds lovely.", "Tell me more."]),
        ("I think that the best thing to cook tonight is pasta.",
         ["I think that the best thing", "to cook tonight is pasta."]),
        ("Hi Theo! How are you today, my friend?", ["Hi Theo!", "How are you today, my friend?"]),
        ("Well - I am not so sure about that.", ["Well", "- I am not so sure about that."]),
        ("Try (this one, or that one) first please now.",
         ["Try (this one, or that one)", "first please now."]),
        ("Pi is 3.14, roughly speaking.", ["Pi is 3.14,", "roughly speaking."]),
        ("Sure thing.", ["Sure thing."]),
    ],
)
def test_first_clause_goes_alone(text: str, pieces: list[str]) -> None:
    """With first_words, the first piece ends at the first clause mark or after that
    many words, wherever the stream is split; the rest comes in sentences."""
    assert stream(text, SentenceChunker(first_words=6, first_max_chars=48)) == pieces
    c = SentenceChunker(first_words=6, first_max_chars=48)
    assert c.push(text) + c.flush() == pieces
    assert " ".join(pieces) == text


def test_first_clause_waits_for_the_next_word() -> None:
    c = SentenceChunker(first_words=3)
    assert c.push("One two three") == []
    assert c.push(" ") == []  # a fourth word may not come: the sentence may end here
    assert c.push("four") == ["One two three"]
    assert c.flush() == ["four"]
