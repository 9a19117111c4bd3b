"""The reply guard: the start of a reply is checked before anyone sees or hears it.

A small model sometimes answers by copying the user's words back, introduces
herself again, greets the user again in the middle of a conversation, talks of
the user by name as if of someone else, starts the same way as her last reply,
or talks like a help desk. The guard holds back the first clause of the stream (up to the first
comma or sentence end after at least four words, or :data:`MAX_CLAUSE_WORDS`
words), checks it with the rules
of :mod:`companion.replycheck`, and on a hit samples again (another seed,
stronger penalties: the caller's ``attempt(n)`` decides), at most ``retries``
times. The prompt is cached by then, so a retry costs only the few tokens of the
clause. A reply that still fails loses its first sentence (the rest is checked
as usual; with nothing left she says ``Context.instead``, a short line that
listens) and is reported, so that the dialog can keep it out of later prompts.

After the first clause the reply goes on a sentence at a time: each sentence is
checked when it is complete (a help-desk phrase, an echo of the user, a new
introduction, a repeat of what she just said) and the reply ends before the
first one that fails, rather than saying it.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from companion.replycheck import (
    claims_role,
    greeted,
    greets,
    help_desk,
    introduces_herself,
    longest_run,
    repeats,
    sentences,
    short_echo,
    speaks_of,
    words,
)

#: How many times a reply is sampled again at most.
GUARD_RETRIES = 2
#: Most words held back before the check (later sentences are checked as they end).
MAX_CLAUSE_WORDS = 10
#: Words of a sentence held back at most before it is checked and shown.
PIECE_WORDS = 14
#: An echo in a clause: this many of the user's words in a row.
ECHO_RUN = 4
#: A loop across turns: this many words in a row of her last reply.
LOOP_RUN = 5
_CLAUSE_END = re.compile(r"[,;:.!?\u2026\u2014\n]")
#: A sentence's end: terminal punctuation (and closing quotes) and the space after it.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?:\s+|$)(?=\S)|\n+")


@dataclass(slots=True)
class GuardOutcome:
    """What the guard did for one reply."""

    resampled: int = 0
    problems: tuple[str, ...] = ()
    #: The reply that went out still failed the check.
    failed: bool = False
    #: The reply was ended early, before a later sentence that went wrong.
    trimmed: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    """What a clause is checked against."""

    user_text: str
    persona_name: str
    #: She has spoken before in this conversation (a new introduction is wrong).
    has_spoken: bool = True
    #: Her previous reply (a reply starting the same way is a loop across turns).
    last_reply: str = ""
    #: The user's message before this one: what they said of themselves there is
    #: theirs too ("I've been writing letters" a turn after they said so).
    user_before: str = ""
    #: Her last few replies (a run of :data:`LOOP_RUN` of their words again is a
    #: loop; "" reads ``last_reply`` alone).
    recent: str = ""
    #: Whether a piece of the reply states another date or time than the one
    #: the turn set in the agenda (see :mod:`companion.agenda.intake`).
    wrong_time: Callable[[str], bool] | None = None
    #: Said instead of a first clause that still fails after the retries (None:
    #: it goes out as it is, unless it states a wrong time); "" says nothing
    #: more (the reply's prefill has already confirmed the agenda's time).
    fallback: str | None = None
    #: The user's name (what they are called): she never says it is hers.
    user_name: str = ""
    #: The private note and instructions the reply was given: a reply that
    #: copies their wording (not the facts in them) is reading its notes aloud.
    note: str = ""
    #: Said when every try failed and nothing after the failing sentence was
    #: left to say ("" says nothing).
    instead: str = ""
    #: The reply's first words were given (a prefill): a first sentence that
    #: failed every try goes out, as it has already begun.
    prefilled: bool = False


def problem(clause: str, ctx: Context) -> str | None:
    """What is wrong with the first clause of a reply, or None."""
    w = words(clause)
    user = words(ctx.user_text)
    if longest_run(w, user) >= ECHO_RUN or any(short_echo(words(s), user)
                                               for s in sentences(clause)):
        return "echo"
    if (who := who_is_who(clause, ctx)) is not None:
        return who
    if repeats(clause, 3):
        return "loop"
    last = words(ctx.last_reply)
    if len(w) >= ECHO_RUN and last[:ECHO_RUN] == w[:ECHO_RUN]:
        return "loop"
    if longest_run(w, words(ctx.recent or ctx.last_reply)) >= LOOP_RUN:  # said again
        return "loop"
    if help_desk(clause):
        return "assistant"
    if reads_note(w, ctx.note):
        return "note"
    if ctx.wrong_time is not None and ctx.wrong_time(clause):
        return "time"
    return None


def who_is_who(text: str, ctx: Context) -> str | None:
    """Whether ``text`` mixes up who is who: she introduces herself again, or says
    as her own what the user said of themselves (judged sentence by sentence:
    "...since I deleted old code. How about you?" is hers), their job or their
    name ("identity"); talks of the user by name as of someone else ("third
    person"); greets them again ("greeting")."""
    if ctx.has_spoken and introduces_herself(text, ctx.persona_name):
        return "identity"
    theirs = words(f"{ctx.user_before}\n{ctx.user_text}")
    if (
        any(takes_on(words(s), theirs, 3) for s in sentences(text))
        or takes_name(text, ctx)
        or claims_role(text, ctx.user_text)
    ):
        return "identity"
    if speaks_of(text, ctx.user_name):
        return "third person"
    if greets_again(text, ctx):
        return "greeting"
    return None


def greets_again(text: str, ctx: Context) -> bool:
    """A greeting ("Hi there, Theo. It's great to meet you.") in answer to a
    message that neither greets her nor gives a name, once she has spoken."""
    return ctx.has_spoken and bool(ctx.user_text) and greets(text) and not greeted(ctx.user_text)


_CALLED = re.compile(r"\b(?i:i'm|i am|my name is|call me|this is)\s+([A-Z][\w'-]+)")


def takes_name(text: str, ctx: Context) -> bool:
    """She gives the user's name as her own ("I'm Theo"): the name the user goes
    by, or the one they just gave ("Hi, I'm Theo")."""
    names = {ctx.user_name.lower()} if ctx.user_name else set()
    names |= {m.group(1).lower() for m in _CALLED.finditer(ctx.user_text.replace("\u2019", "'"))}
    names.discard(ctx.persona_name.lower())
    names.discard("")
    return bool(names) and introduces_any(text, names)


def introduces_any(text: str, names: set[str]) -> bool:
    return any(introduces_herself(text, name) for name in names)


#: Words in a row from the note's own wording that make a reply a note read aloud.
NOTE_RUN = 5


def reads_note(reply: list[str], note: str) -> bool:
    """``reply`` (its words) copies :data:`NOTE_RUN` words in a row of the note's
    wording; its remembered facts (lines starting "- ") may be said back."""
    if not note or len(reply) < NOTE_RUN:
        return False
    return longest_run(reply, _wording(note)) >= NOTE_RUN


@functools.lru_cache(maxsize=8)
def _wording(note: str) -> tuple[str, ...]:
    """The note's own words, without its remembered facts (read once per reply,
    not once per sentence checked)."""
    kept = "\n".join(line for line in note.splitlines() if not line.lstrip().startswith("- "))
    return tuple(words(kept))


def clause_done(text: str, user_text: str = "") -> bool:
    """The held-back text is long enough to check: a clause that has ended after
    at least :data:`ECHO_RUN` words, or :data:`MAX_CLAUSE_WORDS` words; while its
    last words are copying ``user_text``, it waits for more."""
    w = words(text)
    if len(w) >= MAX_CLAUSE_WORDS:
        return True
    if _copying(w, words(user_text)):
        return False
    ends = [m.start() for m in _CLAUSE_END.finditer(text)]
    return any(len(words(text[:end])) >= ECHO_RUN for end in ends)


_FIRST_PERSON = frozenset(("i", "i'm", "i've", "i'd", "i'll", "my", "me", "we", "we're", "our"))
_SECOND_PERSON = frozenset(("you", "your", "you're", "you've", "yours"))
_FILLER_WORDS = (
    "a an the and or but so to of for in on at by with from about as is am are was were be "
    "been being do does did have has had it its this that these those there here just really "
    "very too also not no yes oh well like"
)
_FILLER = frozenset(_FILLER_WORDS.split())


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)].rstrip("e")
    return word.rstrip("e")


def takes_on(reply: list[str], user: list[str], least: int) -> bool:
    """She says, in the first person, what the user said of themselves: the user
    spoke of "I"/"my", and right after one of her own "I"/"my" come at least
    ``least`` content words, the first (her verb) and half of them the user's
    (stems compared), with no "you" among them ("I write emails for other
    people" after "I write letters for other people at a company"; not "I'm
    sorry about your divorce", nor "I think writing letters is lovely")."""
    if not (_FIRST_PERSON & set(user)):
        return False
    theirs = {_stem(x) for x in user if x not in _FILLER}
    for start, word in enumerate(reply):
        if word not in _FIRST_PERSON:
            continue
        after = reply[start + 1 : start + 11]
        if _SECOND_PERSON & set(after):
            continue
        content = [_stem(x) for x in after if x not in _FILLER and x not in _FIRST_PERSON]
        # her verb is the user's ("I write ...", not "I think writing ..."), and most
        # of what follows is theirs
        if (
            len(content) >= least
            and content[0] in theirs
            and sum(c in theirs for c in content) >= 0.5 * len(content)
        ):
            return True
    return False


def _copying(reply: list[str], user: list[str]) -> bool:
    """The reply's last two words stand next to each other in the user's message
    (and the run is not long enough yet to be an echo)."""
    if len(reply) < 2 or not user:
        return False
    a, b = reply[-2], reply[-1]
    pairs = any(user[i] == a and user[i + 1] == b for i in range(len(user) - 1))
    return pairs and longest_run(reply, user) < ECHO_RUN


def guarded(
    attempt: Callable[[int], Iterator[str]],
    ctx: Context,
    outcome: GuardOutcome,
    *,
    retries: int = GUARD_RETRIES,
) -> Iterator[str]:
    """The reply from ``attempt(0)``, or from a later attempt when the first
    clause of the earlier one had a problem; ``outcome`` records what happened."""
    found: list[str] = []
    for n in range(retries + 1):
        stream = attempt(n)
        head = ""
        try:
            for chunk in stream:
                head += chunk
                if clause_done(head, ctx.user_text):
                    break
        except KeyboardInterrupt:
            # Ctrl-C while the clause was held back: what she said so far is kept.
            _close(stream)
            if head:
                yield head
            raise
        except BaseException:
            _close(stream)
            raise
        issue = problem(head, ctx) if words(head) else "empty"
        if issue is not None and n < retries:
            found.append(issue)
            _close(stream)
            outcome.resampled += 1
            continue
        if issue is not None and (issue == "time" or ctx.fallback is not None):
            # never a time the agenda does not hold; a confirmation over a failed reply
            _close(stream)
            outcome.problems = (*found, issue)
            outcome.trimmed = True
            if ctx.fallback:
                yield ctx.fallback
            return
        if issue is not None and not ctx.prefilled:
            # every try failed: her first sentence is left out, the rest is checked
            # as usual, and when nothing is left she says ctx.instead
            found.append(issue)
            outcome.failed = outcome.trimmed = True
            outcome.problems = tuple(found)
            try:
                rest = _after_sentence(head, stream)
                said = False
                for piece in _sentences_after("", stream, ctx, outcome, rest):
                    said = said or bool(words(piece))
                    yield piece
                if not said and ctx.instead:
                    yield ctx.instead
            finally:
                _close(stream)
            return
        if issue is not None:
            found.append(issue)
            outcome.failed = True
        outcome.problems = tuple(found)
        # What came in the same chunk after the clause's end is checked with the
        # next sentence, not shown with the clause.
        cut = clause_end(head)
        head, carry = head[:cut], head[cut:]
        try:
            if head:
                yield head
            # (a first clause that failed every attempt still goes out, but the
            # sentences after it are checked as usual: no taking on the user's day)
            yield from _sentences_after(head, stream, ctx, outcome, carry)
        finally:
            _close(stream)
        return


def _sentences_after(
    head: str, stream: Iterator[str], ctx: Context, outcome: GuardOutcome, pending: str = ""
) -> Iterator[str]:
    """The rest of the reply, a sentence at a time; it ends before a sentence
    that goes wrong (see :func:`sentence_problem`) instead of saying it.
    ``pending`` is text already read after the first clause."""
    said = head
    held: BaseException | None = None
    try:
        for chunk in itertools.chain([""], stream):
            pending += chunk
            while (cut := _piece_end(pending)) > 0:
                sentence, pending = pending[:cut], pending[cut:]
                if sentence_problem(sentence, said, ctx) is not None:
                    outcome.trimmed = True
                    if end := _trailing_off(said):
                        yield end
                    return
                said += sentence
                yield sentence
    except KeyboardInterrupt as exc:
        held = exc  # Ctrl-C: what she was saying is kept (below), then it goes on up
    if pending.strip() and (held is not None or sentence_problem(pending, said, ctx) is None):
        yield pending
    elif pending.strip():
        outcome.trimmed = True
        if end := _trailing_off(said):
            yield end
    if held is not None:
        raise held


def _after_sentence(text: str, stream: Iterator[str]) -> str:
    """What follows the end of the sentence that ``text`` starts, reading ``stream``
    as far as needed ("" when the reply ends first)."""
    while (end := _SENTENCE_END.search(text)) is None:
        chunk = next(stream, None)
        if chunk is None:
            return ""
        text += chunk
    return text[end.end() :]


def _trailing_off(said: str) -> str:
    """What ends a reply cut before a sentence that failed: nothing after a whole
    sentence; after a clause ("That's a bit sad,"), an ellipsis, so that it reads
    as trailing off rather than broken."""
    tail = said.rstrip()
    return "" if not tail or tail[-1] in ".!?\u2026\"'\u201d\u2019)" else "\u2026"


def clause_end(text: str) -> int:
    """Where the first clause that :func:`clause_done` accepts ends in ``text``
    (after its punctuation and the space after it); ``len(text)`` when it was
    accepted for its length."""
    for m in _CLAUSE_END.finditer(text):
        if len(words(text[: m.start()])) >= ECHO_RUN:
            end = m.end()
            while end < len(text) and text[end] in " \t\"'\u201d\u2019)]":
                end += 1
            return end
    return len(text)


def _piece_end(text: str) -> int:
    """Where the first checkable piece of ``text`` ends: its first sentence, or
    after :data:`PIECE_WORDS` words of a sentence that runs on (0: not yet)."""
    end = _SENTENCE_END.search(text)
    if end is not None:
        return end.end()
    if len(words(text)) < PIECE_WORDS:
        return 0
    space = max(text.rfind(" "), text.rfind("\t"))
    return space + 1 if space > 0 else 0


def sentence_problem(sentence: str, said: str, ctx: Context) -> str | None:
    """What is wrong with a later sentence of a reply (``said``: the reply so far)."""
    w = words(sentence)
    if not w:
        return None
    # the whole sentence so far: the first piece continues the first clause's sentence
    start = max((m.end() for m in _SENTENCE_END.finditer(said)), default=0)
    if longest_run(words(said[start:] + sentence), words(ctx.user_text)) >= 6 or short_echo(
        w, words(ctx.user_text)
    ):
        return "echo"
    if longest_run(w, words(ctx.recent or ctx.last_reply)) >= LOOP_RUN:
        return "loop"
    if (who := who_is_who(sentence, ctx)) is not None:
        return who
    if help_desk(sentence) or help_desk(said[-30:] + sentence):
        return "assistant"
    before = words(said)
    grams = {tuple(before[i : i + 4]) for i in range(len(before) - 3)}
    if any(tuple(w[i : i + 4]) in grams for i in range(len(w) - 3)) or repeats(sentence, 4):
        return "loop"
    if reads_note(words(said[start:] + sentence), ctx.note):
        return "note"
    if ctx.wrong_time is not None and ctx.wrong_time(said[start:] + sentence):
        return "time"
    return None


def _close(stream: Iterator[str]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
