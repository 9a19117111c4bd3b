"""The reply guard: the start of a reply is checked before anyone sees or hears it.

A small model sometimes answers by copying the user's words back, introduces
herself again, starts the same way as her last reply, or talks like a help
desk. The guard holds back the first clause of the stream (up to the first
comma or sentence end, or :data:`CLAUSE_WORDS` words), checks it with the rules
of :mod:`companion.replycheck`, and on a hit samples again (another seed,
stronger penalties: the caller's ``attempt(n)`` decides), at most ``retries``
times. The prompt is cached by then, so a retry costs only the few tokens of the
clause. A reply that still fails is passed on as it is and reported, so that
the dialog can keep it out of later prompts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from companion.replycheck import (
    help_desk,
    introduces_herself,
    longest_run,
    repeats,
    words,
)

#: Most words held back before the check.
CLAUSE_WORDS = 7
#: An echo in a clause: this many of the user's words in a row.
ECHO_RUN = 4
_CLAUSE_END = re.compile(r"[,;:.!?\u2026\u2014\n]")


@dataclass(slots=True)
class GuardOutcome:
    """What the guard did for one reply."""

    resampled: int = 0
    problems: tuple[str, ...] = ()
    #: The reply that went out still failed the check.
    failed: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    """What a clause is checked against."""

    user_text: str
    persona_name: str
    #: She has spoken before in this conversation (a new introduction is wrong).
    has_spoken: bool = True
    #: Her previous reply (a reply starting the same way is a loop across turns).
    last_reply: str = ""


def problem(clause: str, ctx: Context) -> str | None:
    """What is wrong with the first clause of a reply, or None."""
    w = words(clause)
    user = words(ctx.user_text)
    if longest_run(w, user) >= ECHO_RUN:
        return "echo"
    if ctx.has_spoken and introduces_herself(clause, ctx.persona_name):
        return "identity"
    if repeats(clause, 3):
        return "loop"
    last = words(ctx.last_reply)
    if len(w) >= 4 and last[: len(w)] == w:
        return "loop"
    if help_desk(clause):
        return "assistant"
    return None


def clause_done(text: str) -> bool:
    """The held-back text is long enough to check: :data:`CLAUSE_WORDS` words, or
    a clause that has ended after at least :data:`ECHO_RUN` words."""
    n = len(words(text))
    if n >= CLAUSE_WORDS:
        return True
    ends = [m.start() for m in _CLAUSE_END.finditer(text)]
    return any(len(words(text[:end])) >= ECHO_RUN for end in ends)


def guarded(
    attempt: Callable[[int], Iterator[str]],
    ctx: Context,
    outcome: GuardOutcome,
    *,
    retries: int = 2,
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
                if clause_done(head):
                    break
        except KeyboardInterrupt:
            # Ctrl-C while the clause was held back: what she said so far is kept.
            if head:
                yield head
            raise
        issue = problem(head, ctx) if head.strip() else None
        if issue is not None and n < retries:
            found.append(issue)
            _close(stream)
            outcome.resampled += 1
            continue
        if issue is not None:
            found.append(issue)
            outcome.failed = True
        outcome.problems = tuple(found)
        try:
            if head:
                yield head
            yield from stream
        finally:
            _close(stream)
        return


def _close(stream: Iterator[str]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
