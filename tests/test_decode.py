"""decode_reply, the one decode loop of the local backends, driven by a scripted Stepper;
and SentenceLimit, which ends a reply after its sentences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from companion.llm.decode import SENTENCE_GRACE_TOKENS, GenerationStats, decode_reply
from companion.llm.textstream import SentenceLimit
from companion.types import GenerationParams

VOCAB = [
    "<eos>", "<|im_end|>", "\n", " Hi", " there", ".", " How", " are", " you", "?", " I",
    " am", " fine", " Dr", " Smith", " paid", " 3", "5", " dollars", " Then", " he", " left",
    " un", "believ", "able", " and", " so", " on", "!", " User", ":", " one", " two",
    " three", " four", " five", " six", " seven", " So", " do", " said", " He", ' "', '"',
    "Hi", "I",
]
ID = {text: i for i, text in enumerate(VOCAB)}
EOS, END = ID["<eos>"], ID["<|im_end|>"]
GREEDY = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=256)


def tokens(text: str) -> list[int]:
    """Longest-match tokenizing over VOCAB."""
    out, i = [], 0
    while i < len(text):
        best = max((t for t in VOCAB if text.startswith(t, i)), key=len)
        out.append(ID[best])
        i += len(best)
    return out


class ScriptedStepper:
    """A model that wants the scripted tokens in turn, then <eos>.

    A step may be a pair (wanted, runner-up): the runner-up scores 0.5 less.
    """

    end_ids = frozenset({EOS, END})

    def __init__(self, script: Sequence[str | tuple[str, str]], reused: int = 0) -> None:
        self.script = list(script)
        self.reused = reused
        self.prompts: list[list[int]] = []
        self.fed: list[int] = []

    def _logits(self) -> np.ndarray:
        n = len(self.fed)
        step = self.script[n] if n < len(self.script) else "<eos>"
        want = [step] if isinstance(step, str) else list(step)
        logits = np.zeros(len(VOCAB), dtype=np.float32)
        for score, text in zip((10.0, 9.5), want, strict=False):
            logits[ID[text]] = score
        return logits

    def prefill(self, prompt: list[int]) -> tuple[int, np.ndarray]:
        self.prompts.append(list(prompt))
        return self.reused, self._logits()

    def step(self, token: int) -> np.ndarray:
        self.fed.append(token)
        return self._logits()

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(VOCAB[i] for i in ids if i not in self.end_ids)

    def encode(self, text: str) -> list[int]:
        return tokens(text)


def tokens_text(text: str) -> list[str]:
    return [VOCAB[i] for i in tokens(text)]


def run(
    script: Sequence[str | tuple[str, str]] | str,
    prompt: str = " Hi",
    context_length: int = 4096,
    **changes: object,
) -> tuple[list[str], GenerationStats, ScriptedStepper]:
    stepper = ScriptedStepper(tokens_text(script) if isinstance(script, str) else script, 3)
    stats: list[GenerationStats] = []
    chunks = list(
        decode_reply(stepper, tokens(prompt), replace(GREEDY, **changes),
                     context_length=context_length, on_stats=stats.append)
    )
    assert len(stats) == 1
    return chunks, stats[0], stepper


def test_ends_at_an_end_id_streaming_as_it_goes() -> None:
    chunks, stats, stepper = run(" Hi there. How are you?", prompt=" Hi there")
    assert "".join(chunks) == " Hi there. How are you?" and len(chunks) > 3
    assert stepper.prompts == [tokens(" Hi there")]
    assert stepper.fed == tokens(" Hi there. How are you?")
    assert (stats.stop_reason, stats.generated_tokens) == ("eos", 7)
    assert (stats.prompt_tokens, stats.reused_tokens) == (2, 3)


def test_the_chat_end_token_ends_too() -> None:
    chunks, stats, _ = run([" Hi", "<|im_end|>", " there"])
    assert "".join(chunks) == " Hi" and stats.stop_reason == "eos"


def test_stop_string_ends_the_reply_and_is_not_yielded() -> None:
    chunks, stats, stepper = run(" Hi there User: How are you", stop=(" User:",))
    assert "".join(chunks) == " Hi there"
    assert stats.stop_reason == "stop" and stats.generated_tokens == 4
    assert len(stepper.fed) == 3  # no step past the stop


def test_stop_string_right_after_a_sentence_keeps_its_punctuation() -> None:
    for stop in ("\n User:", "\n"):
        chunks, stats, _ = run(" Hi there.\n User: Hi", stop=(stop,))
        assert ("".join(chunks), stats.stop_reason) == (" Hi there.", "stop")
    # past max_tokens too, where a trailing word is held back until it is whole
    chunks, stats, _ = run(
        " one two three four\n User", stop=("\n",), max_tokens=3, max_sentences=5
    )
    assert ("".join(chunks), stats.stop_reason) == (" one two three four", "stop")


def test_max_sentences_ends_right_after_the_punctuation() -> None:
    chunks, stats, stepper = run(" Hi there! How are you? I am fine.", max_sentences=2)
    assert "".join(chunks) == " Hi there! How are you?"
    assert stats.stop_reason == "sentences"
    assert len(stepper.fed) == 7  # it saw " I" (the "?" ends a sentence), then stopped


def test_abbreviations_and_decimals_are_not_sentence_ends() -> None:
    text = " Dr. Smith paid 3.5 dollars. Then he left."
    chunks, stats, _ = run(text, max_sentences=1)
    assert "".join(chunks) == " Dr. Smith paid 3.5 dollars."
    assert stats.stop_reason == "sentences"


def test_closing_quote_belongs_to_the_sentence() -> None:
    chunks, _, _ = run(' He said "Hi there." Then he left.', max_sentences=1)
    assert "".join(chunks) == ' He said "Hi there."'


def test_fewer_sentences_than_the_limit_end_at_eos() -> None:
    chunks, stats, _ = run(" Hi there. How are you?", max_sentences=3)
    assert "".join(chunks) == " Hi there. How are you?" and stats.stop_reason == "eos"


def test_past_max_tokens_the_sentence_is_finished() -> None:
    text = " Hi there. one two three four five six. seven"
    chunks, stats, _ = run(text, max_tokens=5, max_sentences=5)
    assert "".join(chunks) == " Hi there. one two three four five six."
    assert stats.stop_reason == "sentences" and stats.generated_tokens == 11


def test_hard_limit_never_ends_mid_word() -> None:
    grace = SENTENCE_GRACE_TOKENS
    script = [" one"] * (grace + 1) + [" un", "believ", "able", "."]
    chunks, stats, stepper = run(script, max_tokens=3, max_sentences=5)
    text = "".join(chunks)
    assert stats.stop_reason == "length" and stats.generated_tokens == grace + 3
    assert len(stepper.fed) == grace + 2  # the last token is not fed
    assert text.rstrip() == " one" * (grace + 1)


def test_hard_limit_keeps_a_finished_sentence() -> None:
    script = [" one"] * (SENTENCE_GRACE_TOKENS + 2) + ["."]
    chunks, stats, _ = run(script, max_tokens=3, max_sentences=5)
    assert "".join(chunks) == " one" * (SENTENCE_GRACE_TOKENS + 2) + "."
    assert stats.stop_reason == "length"


def test_without_a_sentence_limit_max_tokens_is_hard_and_ends_on_a_whole_word() -> None:
    script = [" one", " two", " un", "believ", "able", "."]
    chunks, stats, _ = run(script, max_tokens=4)
    assert "".join(chunks) == " one two "
    assert (stats.stop_reason, stats.generated_tokens) == ("length", 4)


def test_the_context_window_bounds_the_reply() -> None:
    chunks, stats, stepper = run([" one", " two", " three", " four"], prompt=" Hi there",
                                 context_length=5, max_tokens=100)
    assert stats.generated_tokens == 3 and stats.stop_reason == "length"
    assert len(stepper.fed) == 2 and "".join(chunks).rstrip() == " one two"


@pytest.mark.parametrize(("after", "generated"), [(0, 1), (1, 2), (3, 5)])
def test_closing_the_stream_reports_cancelled_once(after: int, generated: int) -> None:
    stepper = ScriptedStepper(tokens_text(" Hi there. How are you? I am fine."))
    stats: list[GenerationStats] = []
    stream = decode_reply(stepper, tokens(" Hi"), GREEDY, context_length=99,
                          on_stats=stats.append)
    for _ in range(after + 1):
        next(stream)
    stream.close()
    assert [s.stop_reason for s in stats] == ["cancelled"]
    assert stats[0].generated_tokens == generated


def test_echo_steers_away_from_copying_the_user() -> None:
    script = [" I", " am", (" fine", "."), "<eos>"]
    assert "".join(run(script)[0]) == " I am fine"
    chunks, _, _ = run(script, echo_text="I am fine", echo_penalty=1.0)
    assert "".join(chunks) == " I am."


@pytest.mark.parametrize("marker", ["<|im_end|>", "\n"])
def test_dry_leaves_template_markers_alone(marker: str) -> None:
    # The prompt's " Hi there" was followed by the marker; the reply repeats it.
    prompt = " Hi there" + ("" if marker.startswith("<") else marker) + " Hi"
    ids = tokens(prompt) if marker == "\n" else [ID[" Hi"], ID[" there"], END, ID[" Hi"]]
    stepper = ScriptedStepper([" there", (marker, " you")])
    stats: list[GenerationStats] = []
    params = replace(GREEDY, dry_multiplier=2.0, dry_allowed_length=2)
    text = "".join(decode_reply(stepper, ids, params, context_length=99,
                                on_stats=stats.append))
    assert text == " there" + ("" if marker.startswith("<") else marker)
    # the same repeat of ordinary words is penalised
    stepper = ScriptedStepper([" there", (" are", " you")])
    ids = tokens(" Hi there are Hi")
    text = "".join(decode_reply(stepper, ids, params, context_length=99,
                                on_stats=stats.append))
    assert text == " there you"


# -- SentenceLimit on its own --------------------------------------------------


def limited(text: str, limit: int, *, by_char: bool) -> str:
    s = SentenceLimit(limit)
    parts = list(text) if by_char else [text]
    return "".join(s.push(p) for p in parts) + s.flush(complete=True)


@pytest.mark.parametrize("by_char", [False, True])
@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("One. Two! Three? Four.", 2, "One. Two!"),
        ("Really?! Yes. No.", 1, "Really?!"),
        ("Mrs. Jones, e.g. a friend, paid 2.50 at St. Mary's. Then left.", 1,
         "Mrs. Jones, e.g. a friend, paid 2.50 at St. Mary's."),
        ("A. B. Smith came. Bye.", 1, "A. B. Smith came."),
        ("No limit. At all.", 0, "No limit. At all."),
        ("So do I. How are you?", 1, "So do I."),
        ("No. I think not.", 1, "No."),
    ],
)
def test_sentence_limit(text: str, limit: int, expected: str, by_char: bool) -> None:
    assert limited(text, limit, by_char=by_char) == expected


def test_finish_sentence_holds_back_a_partial_word() -> None:
    s = SentenceLimit()
    assert s.push("One. Two thr") == "One. Two thr"
    s.finish_sentence()
    assert s.push("ee fo") == "ee "
    assert s.flush(complete=False) == ""  # cut at the hard limit: "fo" may be half a word
    s = SentenceLimit()
    s.finish_sentence()
    assert s.push("Two fo") + s.flush(complete=True) == "Two fo"  # the model ended it


def test_a_hard_limit_is_not_run_past_to_finish_the_sentence() -> None:
    script = [" one", " two", " three", " four", " five", "."]
    chunks, stats, _ = run(script, max_tokens=3, max_sentences=2, hard_limit=True)
    assert (stats.stop_reason, stats.generated_tokens) == ("length", 3)
    assert "".join(chunks).split() == ["one", "two"]  # the last word may not be whole: held
