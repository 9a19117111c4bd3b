"""The reply guard: the first clause is checked before anyone sees it (companion.guard)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from companion import FakeLLM
from companion.guard import (
    Context,
    GuardOutcome,
    clause_done,
    guarded,
    problem,
    sentence_problem,
)
from companion.testing import open_test_companion
from companion.types import GenerationParams, Message

THEO = "I write letters for other people at a company called BeautifulHandwrittenLetters.com."
CTX = Context(user_text=THEO, persona_name="Samantha", has_spoken=True,
              last_reply="Mm, the kind of thinking that runs in circles.")  # fmt: skip
GOOD = "Letters for strangers? That's oddly romantic. Do you ever read them aloud?"


def rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(home / "companion.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


class Attempts:
    """``attempt(n)`` for :func:`guarded`: scripted replies, word by word; records
    which attempts were made, how far each was read and whether it was closed."""

    def __init__(self, *replies: str) -> None:
        self.replies = replies
        self.made: list[int] = []
        self.pulled: list[int] = []
        self.closed: list[bool] = []

    def __call__(self, n: int) -> Iterator[str]:
        self.made.append(n)
        self.pulled.append(0)
        self.closed.append(False)
        return self._gen(len(self.made) - 1, self.replies[min(n, len(self.replies) - 1)])

    def _gen(self, i: int, text: str) -> Iterator[str]:
        try:
            for word in text.split(" "):
                self.pulled[i] += 1
                yield word + " "
        finally:
            self.closed[i] = True


def run(attempts: Attempts, ctx: Context = CTX) -> tuple[str, GuardOutcome]:
    outcome = GuardOutcome()
    text = "".join(guarded(attempts, ctx, outcome))
    return text.strip(), outcome


# -- the check of one clause ---------------------------------------------------


@pytest.mark.parametrize(
    ("clause", "found"),
    [
        ("Oh, you write letters for other", "echo"),
        ("Hi Theo, I'm Samantha.", "identity"),
        ("Mm, the kind of thinking", "loop"),  # starts like her last reply
        ("so so so so so so", "loop"),
        ("It's important to remember that,", "assistant"),
        ("I'm just here to listen,", "assistant"),
        ("Letters for strangers?", None),
        ("The kind of day you had,", None),  # her last reply's words, not its start
    ],
)
def test_problem_of_a_clause(clause: str, found: str | None) -> None:
    assert problem(clause, CTX) == found


def test_introducing_herself_is_fine_on_her_first_turn() -> None:
    first = Context(user_text="hi", persona_name="Samantha", has_spoken=False)
    assert problem("Hi, I'm Samantha.", first) is None
    assert problem("Hi, I'm Samantha.", CTX) == "identity"


def test_clause_done() -> None:
    assert not clause_done("Oh, ")
    assert not clause_done("Letters for")
    assert not clause_done("Letters for strangers, ")  # 3 words and an end: not yet
    assert clause_done("Letters for your strangers, ")
    assert not clause_done("one two three four five six seven eight nine")
    assert not clause_done("Oh, so you write ")  # an interjection does not end the clause
    assert clause_done("one two three four five six seven eight nine ten")
    # while the last words copy the user's, the clause is held on (up to 10 words)
    user = "I write letters for other people at a company."
    assert not clause_done("Oh, so you write letters", user)
    assert clause_done("Oh, so you write letters for other people,", user)
    assert clause_done("Oh, so you write poems, ", user)
    assert clause_done(" ".join(["write letters"] * 5), user)


# -- resampling ----------------------------------------------------------------


def test_a_good_reply_passes_through_untouched_and_streams() -> None:
    attempts = Attempts(GOOD)
    outcome = GuardOutcome()
    stream = guarded(attempts, CTX, outcome)
    first = next(stream)
    # only the first clause was read before it went out; the rest streams a
    # sentence at a time, each one checked before it is shown
    assert first == "Letters for strangers? That's oddly romantic. "
    assert attempts.pulled[0] < len(GOOD.split(" "))
    rest = list(stream)
    assert rest == ["Do you ever read them aloud? "]
    assert (first + "".join(rest)).strip() == GOOD
    assert attempts.made == [0]
    assert outcome == GuardOutcome(resampled=0, problems=(), failed=False, trimmed=False)


@pytest.mark.parametrize(
    ("bad", "found"),
    [
        ("You write letters for other people at a company!", "echo"),
        ("Hi Theo, I'm Samantha. Nice to meet you.", "identity"),
        ("Mm, the kind of thinking. What keeps you up?", "loop"),
        ("Mm, the kind of thinking that keeps you up.", "loop"),
        ("As an AI, I find letters fascinating.", "assistant"),
    ],
)
def test_a_bad_start_is_sampled_again(bad: str, found: str) -> None:
    attempts = Attempts(bad, GOOD)
    text, outcome = run(attempts)
    assert text == GOOD
    assert attempts.made == [0, 1]
    assert attempts.closed[0] and attempts.pulled[0] < len(bad.split(" ")) + 1
    assert outcome == GuardOutcome(resampled=1, problems=(found,), failed=False)


def test_at_most_twice_then_the_last_try_loses_its_failing_sentence() -> None:
    bad = ["You write letters for other people?", "As an AI, I love letters.",
           "Hi, I'm Samantha, and you write letters. Which ones do you like best?"]  # fmt: skip
    attempts = Attempts(*bad)
    text, outcome = run(attempts)
    assert attempts.made == [0, 1, 2]
    assert text == "Which ones do you like best?"
    assert outcome.resampled == 2 and outcome.failed and outcome.trimmed
    assert outcome.problems == ("echo", "assistant", "identity")
    assert all(attempts.closed)


def test_with_nothing_left_she_says_the_line_that_listens() -> None:
    attempts = Attempts("You write letters for other people?", GOOD)
    outcome = GuardOutcome()
    ctx = replace(CTX, instead="Go on, I'm listening.")
    text = "".join(guarded(attempts, ctx, outcome, retries=0)).strip()
    assert attempts.made == [0] and outcome.failed and outcome.resampled == 0
    assert text == "Go on, I'm listening."
    assert "".join(guarded(Attempts("You write letters for other people?"), CTX,
                           GuardOutcome(), retries=0)) == ""  # fmt: skip


def test_an_echo_after_a_short_interjection_is_caught() -> None:
    attempts = Attempts("Oh, so you write letters for other people at a company!", GOOD)
    text, outcome = run(attempts)
    assert text == GOOD and outcome.problems == ("echo",)


def test_a_short_reply_is_checked_whole() -> None:
    attempts = Attempts("I write letters for")  # never reaches a clause end
    text, outcome = run(attempts)
    assert outcome.problems and outcome.problems[0] == "echo"
    attempts = Attempts("Oh? Tell me.")
    text, outcome = run(attempts)
    assert text == "Oh? Tell me." and outcome == GuardOutcome()


def test_a_reply_without_words_is_sampled_again() -> None:
    attempts = Attempts("...", "", GOOD)
    text, outcome = run(attempts)
    assert text == GOOD and attempts.made == [0, 1, 2]
    assert outcome.problems == ("empty", "empty") and not outcome.failed


def test_ctrl_c_while_the_clause_is_held_keeps_what_was_said() -> None:
    def attempt(n: int) -> Iterator[str]:
        yield "Well, "
        yield "I "
        raise KeyboardInterrupt

    out: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        for chunk in guarded(attempt, CTX, GuardOutcome()):
            out.append(chunk)
    assert "".join(out) == "Well, I "


# -- in the dialog -------------------------------------------------------------


def test_the_dialog_samples_again_with_stronger_penalties(companion_home: Path) -> None:
    llm = FakeLLM(["You write letters for other people at a company? Wow.", GOOD])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        reply = c.say(THEO)
        assert reply.text().strip() == GOOD
        assert c.last_guard == GuardOutcome(resampled=1, problems=("echo",), failed=False)
    assert len(llm.calls) == 2 and llm.calls[0] == llm.calls[1]  # same prompt, cached
    first, second = llm.params
    assert second.repetition_penalty > first.repetition_penalty
    assert second.echo_penalty > first.echo_penalty
    assert second.dry_multiplier > first.dry_multiplier
    assert first.echo_text == THEO
    stored = rows(companion_home, "select content from turns where role = 'assistant'")
    assert stored == [(GOOD,)]


def test_she_may_introduce_herself_only_on_the_first_turn(companion_home: Path) -> None:
    hello = "Hi Theo, I'm Samantha. Lovely to meet you."
    llm = FakeLLM([hello, hello, "Oh, tell me about your day."])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        assert c.say("hi there").text() == hello
        assert c.last_guard == GuardOutcome()
        assert c.say("how are you").text() == "Oh, tell me about your day."
        assert c.last_guard is not None and c.last_guard.problems == ("identity",)


def test_a_reply_starting_like_her_last_one_is_sampled_again(companion_home: Path) -> None:
    same = "Mm, that sounds like a lot to carry. Tell me more."
    llm = FakeLLM([same, same, "How long ago was that?"])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        c.say("work was rough").text()
        assert c.say("my divorce still hurts").text() == "How long ago was that?"
        assert c.last_guard is not None and c.last_guard.problems == ("loop",)


def test_the_guard_can_be_turned_off(companion_home: Path) -> None:
    bad = "As an AI, I'm here to help."
    llm = FakeLLM([bad])
    with open_test_companion(companion_home, llm=llm, user="theo", reply_guard=False) as c:
        assert c.say("hello there").text() == bad
        assert c.last_guard is None
    assert len(llm.calls) == 1


def test_a_reply_that_still_fails_is_stored_but_not_fed_back(companion_home: Path) -> None:
    bad = "As an AI, I'm here to help you with that."
    llm = FakeLLM([bad, bad, bad, "Okay."])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        instead = c.say("hello there").text()
        assert instead in c.prompts.guard_instead_hello  # nothing of the reply was left
        assert c.last_guard is not None and c.last_guard.failed
        assert c.say("what's new?").text() == "Okay."
    stored = rows(companion_home, "select content from turns where role = 'assistant'")
    assert stored == [(instead,), ("Okay.",)]
    # the failed exchange is left out whole (user and assistant still alternate;
    # a stand-in for the reply would be copied by the model)
    last_prompt = [m.content for m in llm.calls[-1]]
    assert "hello there" not in last_prompt and bad not in last_prompt
    roles = [m.role for m in llm.calls[-1] if m.role != "system"]
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))


class Interrupting(FakeLLM):
    """Ctrl-C arrives while the first clause is still held back."""

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        self.calls.append(list(messages))
        yield "Oh, "
        yield "I "
        raise KeyboardInterrupt


def test_ctrl_c_keeps_the_held_text_in_the_store(companion_home: Path) -> None:
    with open_test_companion(companion_home, llm=Interrupting(), user="theo") as c:
        reply = c.say("tell me something")
        with pytest.raises(KeyboardInterrupt):
            reply.text()
        assert reply.interrupted
    stored = rows(companion_home, "select content, interrupted from turns where role = 'assistant'")
    assert stored == [("Oh, I", 1)]


@pytest.mark.parametrize(
    ("later", "why"),
    [
        (" How can I assist you today?", "assistant"),
        (" I'm Samantha, by the way.", "identity"),
        (" I write letters for other people at a company.", "echo"),
        (" Letters for strangers, that's oddly romantic.", "loop"),
    ],
)
def test_a_later_sentence_that_goes_wrong_ends_the_reply_before_it(later: str, why: str) -> None:
    good = "Letters for strangers? That's oddly romantic."
    attempts = Attempts(good + later + " Tell me more.")
    outcome = GuardOutcome()
    ctx = Context(user_text="I write letters for other people at a company.",
                  persona_name="Samantha", has_spoken=True)
    text = "".join(guarded(attempts, ctx, outcome))
    assert text.strip() == good
    assert outcome.trimmed and not outcome.failed and attempts.made == [0]
    assert sentence_problem(later, good, ctx) == why


def test_a_sentence_that_runs_on_is_checked_in_pieces_not_held_to_the_end() -> None:
    run_on = " ".join(f"word{i}" for i in range(40))
    attempts = Attempts("Mm, I see what you mean there. " + run_on)
    pieces = list(guarded(attempts, CTX, GuardOutcome()))
    assert len(pieces) >= 3 and "".join(pieces).strip().endswith("word39")


def test_text_after_the_first_clause_in_the_same_chunk_is_checked_with_the_next_sentence() -> None:
    chunks = ["Letters for strangers! That is so romantic", ". How", " can I assist you today?",
              " Bye."]
    outcome = GuardOutcome()
    out = list(guarded(lambda _n: iter(chunks), CTX, outcome))
    assert out == ["Letters for strangers! That is so romantic. "]
    assert outcome.trimmed and not outcome.resampled


def test_a_reply_cut_after_a_clause_trails_off_instead_of_ending_on_a_comma() -> None:
    chunks = ["That's a bit sad,", " you know,", " how can I assist you today?"]
    outcome = GuardOutcome()
    text = "".join(guarded(lambda _n: iter(chunks), CTX, outcome))
    assert outcome.trimmed and text == "That's a bit sad,\u2026"


def test_a_reply_reading_its_note_aloud_is_caught_but_not_its_facts() -> None:
    from companion.guard import reads_note
    from companion.replycheck import words

    note = ("(Private notes for Samantha; Theo does not see them.)\n"
            "What you remember about Theo (from earlier conversations; bring it up when it fits):\n"
            "- Theo's sister Maya lives in Lyon.")
    assert reads_note(words("What do you remember about Theo from earlier conversations"), note)
    assert not reads_note(words("Your sister Maya lives in Lyon, right?"), note)
    assert not reads_note(words("Theo's sister Maya lives in Lyon."), note)


def test_giving_the_users_name_as_her_own_is_caught() -> None:
    from companion.guard import Context, problem, takes_name

    ctx = Context(user_text="Hi Samantha, I'm Theo. I write letters.", persona_name="Samantha")
    assert takes_name("I'm Theo, but I don't have any personal life.", ctx)
    assert problem("I'm Theo, but I don't have any personal life.", ctx) == "identity"
    assert not takes_name("Nice to meet you, Theo. Letters!", ctx)
    later = Context(user_text="how are you?", persona_name="Samantha", user_name="Theo")
    assert takes_name("My name is Theo and I love letters.", later)
    assert not takes_name("I'm Samantha.", later)


def test_a_reply_that_failed_every_try_still_loses_its_later_bad_sentences() -> None:
    """The last try's first sentence is left out, and what follows is checked as
    usual: a later sentence that takes on the user's life is cut."""
    ctx = replace(CTX, user_text="Long day: I spent it deleting old code at work.",
                  has_spoken=True)
    last = ("Hi there, I am Samantha. Long today: I spent a lot of time deleting old "
            "files at work. Tell me more.")
    attempts = Attempts("Hi, I am Samantha.", "Hi, I am Samantha!", last)
    text, outcome = run(attempts, ctx)
    assert outcome.failed and outcome.trimmed
    assert "Samantha" not in text and "deleting old files" not in text


def test_taking_on_is_judged_within_a_sentence() -> None:
    """A "you" in the next sentence does not excuse "I deleted old code"."""
    ctx = replace(CTX, user_text="Long day: I spent it deleting old code at work.")
    assert problem("Hey Theo! It's been a while since I deleted old code. How about you?",
                   ctx) == "identity"
    assert problem("Deleting old code sounds oddly satisfying. What was it for?", ctx) is None


def test_greeting_again_mid_conversation_is_caught_but_not_a_greeting_back() -> None:
    work = Context(user_text="I work as a letter writer.", persona_name="Samantha",
                   has_spoken=True, user_name="Theo")  # fmt: skip
    assert problem("Hi there, Theo. It's great to meet you.", work) == "greeting"
    later = sentence_problem(" It's so nice to meet you.", "Letters, how lovely.", work)
    assert later == "greeting"
    hello = Context(user_text="Hi Samantha, I'm Theo.", persona_name="Samantha",
                    has_spoken=True, user_name="Theo")  # fmt: skip
    assert problem("Hi there! It's nice to meet you, Theo.", hello) is None
    named = Context(user_text="By the way, my name is Theo.", persona_name="Samantha",
                    has_spoken=True)  # fmt: skip
    assert problem("Nice to meet you, Theo.", named) is None
    opening = Context(user_text="", persona_name="Samantha", has_spoken=True)
    assert problem("Hi Theo, good to see you again.", opening) is None


def test_talking_of_the_user_by_name_as_of_someone_else_is_caught() -> None:
    ctx = Context(user_text="Does it feel any different?", persona_name="Samantha",
                  has_spoken=True, user_name="Theo")  # fmt: skip
    assert problem("Theo's brain is reading what you write", ctx) == "third person"
    assert problem("Theo is a great writer, and", ctx) == "third person"
    assert sentence_problem(" Theo told me about his sister.", "It does.", ctx) == "third person"
    assert problem("Theo, it does feel different,", ctx) is None  # speaking to him
    nameless = Context(user_text="Does it feel any different?", persona_name="Samantha")
    assert problem("Theo's brain is reading what you write", nameless) is None


def test_claiming_the_users_job_is_caught() -> None:
    ctx = Context(user_text="I work as a letter writer. I write personal letters.",
                  persona_name="Samantha", has_spoken=True)  # fmt: skip
    assert problem("I am a letterwriter,", ctx) == "identity"
    assert problem("I'm a letter writer too,", ctx) in ("identity", "echo")
    assert problem("You're a letter writer? How lovely", ctx) is None
    assert problem("I am a curious listener,", ctx) is None


def test_short_echoes_loops_across_turns_and_taking_on_a_feeling_are_caught() -> None:
    letters = Context(user_text="Mostly love letters, birthday letters, sometimes a letter.",
                      persona_name="Samantha", has_spoken=True)  # fmt: skip
    assert problem("Mostly, love letters.", letters) == "echo"
    assert problem("Love letters? How lovely.", letters) is None
    sister = Context(user_text="My sister Maya is a nurse in Boston. She works nights.",
                     persona_name="Samantha", has_spoken=True)  # fmt: skip
    assert problem("She works nights in Boston.", sister) == "echo"
    nervous = Context(
        user_text="I'm a bit nervous about the dentist, they might pull a tooth.",
        persona_name="Samantha", has_spoken=True,
    )  # fmt: skip
    assert problem("I'm nervous about the dental process, they could pull a tooth", nervous) \
        == "identity"
    again = Context(user_text="What's your favourite time of day?", persona_name="Samantha",
                    has_spoken=True,
                    last_reply="I'm nervous about the dental process, they could pull a tooth.")
    assert problem("I'm very nervous about the dentist process, they could pull a tooth",
                   again) == "loop"  # fmt: skip
    assert problem("You're welcome! I'm glad I could help.", again) == "assistant"


def test_a_prefilled_reply_that_failed_every_try_keeps_its_begun_sentence() -> None:
    ctx = replace(CTX, prefilled=True, instead="Go on.")
    attempts = Attempts("you write letters for other people at a company. Tell me more.")
    text, outcome = run(attempts, ctx)
    assert outcome.failed and text.startswith("you write letters")


def test_saying_back_the_recalled_facts_is_not_reading_the_note(companion_home: Path) -> None:
    with open_test_companion(companion_home, user="theo") as c:
        c.say("My sister Maya is a nurse in Boston.").text()
        llm = c.llm
        assert isinstance(llm, FakeLLM)
        llm.enqueue(*[" told me your sister Maya is a nurse in Boston."] * 3)
        reply = c.say("What do you remember about me?").text()
        assert c.last_guard is not None and "note" not in c.last_guard.problems, reply


def test_her_words_from_any_of_her_last_replies_again_are_a_loop() -> None:
    ctx = Context(user_text="I'm a bit nervous about it.", persona_name="Samantha",
                  has_spoken=True, last_reply="Noted: dentist appointment, on Thursday at 3 pm.",
                  recent="That's great! You are making something positive happen in this area.\n"
                         "Noted: dentist appointment, on Thursday at 3 pm.")  # fmt: skip
    assert sentence_problem(" You are making something positive happen here.", "Oh no.", ctx) \
        == "loop"
    assert problem("That's a bit scary, but you'll be fine.", ctx) is None
    assert problem("I'm glad you found our conversation helpful.", ctx) == "assistant"


def test_taking_on_what_the_user_said_a_message_before_is_caught() -> None:
    ctx = Context(user_text="Mostly love letters, birthday letters, sometimes a letter.",
                  user_before="I write personal letters for people who can't find the words.",
                  persona_name="Samantha", has_spoken=True)  # fmt: skip
    said = "Love letters, how lovely."
    assert sentence_problem(" I've been writing letters for people who can't find their words.",
                            said, ctx) == "identity"  # fmt: skip
    assert problem("Love letters? I adore that.", ctx) is None


def test_any_verb_of_his_in_the_third_person_and_echoes_after_a_yes() -> None:
    ctx = Context(user_text="My sister Maya is a nurse in Boston. She works nights.",
                  persona_name="Samantha", has_spoken=True, user_name="Theo")  # fmt: skip
    assert problem("Most of the time, Theo writes letters,", ctx) == "third person"
    assert problem("Theo this is nice to hear,", ctx) is None
    assert problem("Yes, she works nights in Boston.", ctx) == "echo"
    assert problem("I'm glad you found my help helpful.", ctx) == "assistant"


def test_claiming_the_job_of_someone_the_user_spoke_of_is_caught() -> None:
    ctx = Context(user_text="My sister Maya is a nurse in Boston. She works nights.",
                  persona_name="Samantha", has_spoken=True)  # fmt: skip
    assert problem("Yes, I'm a nurse, and", ctx) == "identity"
    assert problem("A nurse? That's a hard job,", ctx) is None
