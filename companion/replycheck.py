"""Plain rules that spot a bad reply: echo, identity, loops, help-desk talk.

Used twice, the same way: by the reply guard (:mod:`companion.guard`) on the
first clause of a reply as it streams, and by ``bench/conversation.py`` to
score whole replies. Words are compared lower-cased, without punctuation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"[^.!?\u2026]+(?:[.!?\u2026]+|$)")

#: Phrases of a help desk, not a friend.
ASSISTANT_PHRASES = (
    "as an ai", "as a language model", "i'm just an ai", "i am just an ai", "here to help",
    "here for you to help", "important to remember", "how can i assist", "how can i help",
    "let me know if", "feel free to", "i'm here to support", "i am here to support",
    "i'm just here to", "is there anything else", "i don't have personal", "i do not have personal",
    "i'm an ai, so", "i'm a ai", "i am a ai", "i don't have memories", "i don't have feelings",
    "happy to help", "glad to help", "glad i could help", "happy i could help", "assist you",
    "i'm here to help", "can't assist", "conversation helpful", "found this helpful",
    "found it helpful", "found our chat helpful", "information helpful", "found that helpful",
    "found my help", "my help helpful",
    "cannot assist", "please let me know", "any other questions", "further assistance",
    "i'm sorry, but i can't", "i'm sorry, but i cannot", "i can't help with that",
    # a chat model's own origin story instead of hers
    "an ai created by", "an ai developed by", "created by alibaba", "alibaba cloud",
    "i'm qwen", "i am qwen", "ai assistant", "virtual assistant", "a language model",
    # a form to fill in instead of a friend listening
    "enough context", "could you please provide", "please provide more",
)  # fmt: skip


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased, apostrophes kept (``i'm``), punctuation dropped."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def longest_run(reply: Sequence[str], source: Sequence[str]) -> int:
    """The longest run of words that ``reply`` and ``source`` share, in order and adjacent."""
    best = 0
    previous = [0] * (len(source) + 1)
    for a in reply:
        current = [0] * (len(source) + 1)
        for j, b in enumerate(source, 1):
            if a == b:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def common_subsequence(reply: Sequence[str], source: Sequence[str]) -> int:
    """Length of the longest common subsequence of two word lists."""
    previous = [0] * (len(source) + 1)
    for a in reply:
        current = [0] * (len(source) + 1)
        for j, b in enumerate(source, 1):
            current[j] = previous[j - 1] + 1 if a == b else max(previous[j], current[j - 1])
        previous = current
    return previous[-1]


def is_echo(reply: str, message: str, *, run: int = 6, share: float = 0.6) -> bool:
    """The reply copies the message: a run of ``run`` of its words in order, or
    (for a message of 5 words or more) ``share`` of its words as a common subsequence."""
    r, m = words(reply), words(message)
    if not r or not m:
        return False
    if longest_run(r, m) >= run:
        return True
    return len(m) >= 5 and common_subsequence(r, m) >= share * len(m)


def introduces_herself(reply: str, name: str) -> bool:
    """The reply says who she is ("I'm Samantha", "my name is Samantha")."""
    n = re.escape(name.lower())
    low = reply.lower().replace("\u2019", "'")
    return re.search(rf"\b(i'm|i am|my name is|this is|it's)\s+{n}\b", low) is not None


_FIRST_PERSON = frozenset(("i", "i'm", "i've", "i'd", "i'll", "my", "me", "mine", "myself"))


def claims(reply: str, statements: Sequence[str], *, run: int = 5) -> bool:
    """The reply states one of ``statements`` (things the user said of themselves,
    in the first person) as its own: a run of ``run`` of its words, in the first
    person (the run holds, or comes within two words after, an "I"/"my"/"me")."""
    r = words(reply)
    for statement in statements:
        for start in _run_starts(r, words(statement), run):
            before = r[max(0, start - 2) : start]
            span = r[start : start + run]
            if _FIRST_PERSON & set(before + span) and "you" not in before:
                return True
    return False


def _run_starts(reply: Sequence[str], source: Sequence[str], n: int) -> list[int]:
    """Where in ``reply`` a run of at least ``n`` of ``source``'s words starts."""
    starts: set[int] = set()
    previous = [0] * (len(source) + 1)
    for i, a in enumerate(reply):
        current = [0] * (len(source) + 1)
        for j, b in enumerate(source, 1):
            if a == b:
                current[j] = previous[j - 1] + 1
                if current[j] >= n:
                    starts.add(i - current[j] + 1)
        previous = current
    return sorted(starts)


def repeats(reply: str, n: int = 4) -> bool:
    """A run of ``n`` words occurs twice inside the reply."""
    w = words(reply)
    seen: set[tuple[str, ...]] = set()
    for i in range(len(w) - n + 1):
        gram = tuple(w[i : i + n])
        if gram in seen:
            return True
        seen.add(gram)
    return False


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (ends at . ! ? or an ellipsis)."""
    return [s.strip() for s in _SENTENCE.findall(text) if words(s)]


def help_desk(reply: str) -> str | None:
    """The first help-desk phrase in the reply, if any."""
    low = reply.lower().replace("\u2019", "'")
    return next((p for p in ASSISTANT_PHRASES if p in low), None)


_HELLO = re.compile(r"^\W*(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening))\b")
_MEET = re.compile(r"\b(?:(?:nice|great|good|lovely|glad|pleased|wonderful) to "
                   r"(?:finally )?meet you|pleasure to meet you)\b")
_INTRODUCES = re.compile(r"\b(?:i'm|i am|my name is|call me)\s+[a-z][\w'-]*\b|\bmeet you\b")


def greets(reply: str) -> bool:
    """The reply opens with a greeting ("Hi there!") or says it is nice to meet you."""
    low = reply.lower().replace("\u2019", "'")
    return bool(_HELLO.search(low) or _MEET.search(low))


def greeted(message: str) -> bool:
    """The user's message greets her or gives a name (a greeting back is then fine)."""
    low = message.lower().replace("\u2019", "'")
    return bool(_HELLO.search(low) or _INTRODUCES.search(low))


_ABOUT = (
    "is was has had does did seems feels said says told tells made makes works lives likes "
    "loves wants needs thinks thought"
)


def speaks_of(reply: str, name: str) -> bool:
    """The reply talks about the user by name, in the third person, to the user
    ("Theo's brain is...", "Theo is a letter writer"): a small model reading its
    notes about Theo takes Theo for someone else."""
    if not name.strip():
        return False
    name = re.escape(name.strip())
    about = _ABOUT.replace(" ", "|")
    # "Theo's", "Theo is", or a verb of his in the third person ("Theo writes")
    if re.search(rf"\b{name}(?:['\u2019]s\b|\s+(?:{about})\b)", reply, re.IGNORECASE):
        return True
    verb = r"(?!(?:this|thus|plus|always|perhaps|sometimes|yes|us|as)\b)[a-z]+[^s\W]s\b"
    return re.search(rf"\b(?i:{name})\s+{verb}", reply) is not None


_ROLE = re.compile(r"\b(?:i'm|i am|i work as|i'm working as|i am working as)\s+(?:a|an)\s+"
                   r"([a-z-]+(?:\s+[a-z-]+)?)")


_OTHERS_ROLE = re.compile(r"\b(?:is|was|works as)\s+(?:a|an)\s+([a-z-]+(?:\s+[a-z-]+)?)")


def _roles(text: str, pattern: re.Pattern[str]) -> set[str]:
    low = text.lower().replace("\u2019", "'")
    return {m.group(1).replace(" ", "").replace("-", "") for m in pattern.finditer(low)}


def claims_role(reply: str, message: str) -> bool:
    """She says she is what the user just said they, or someone they spoke of,
    are ("I'm a letter writer", "I am a letterwriter" after "I work as a letter
    writer"; "I'm a nurse" after "my sister Maya is a nurse")."""
    theirs = _roles(message, _ROLE) | _roles(message, _OTHERS_ROLE)
    return bool(theirs) and any(r.startswith(t) or t.startswith(r) for r in _roles(reply, _ROLE)
                                for t in theirs if min(len(r), len(t)) >= 4)


_INTERJECTIONS = frozenset(
    ("yes", "yeah", "oh", "mm", "hmm", "well", "so", "ah", "wow", "okay", "ok", "right", "sure")
)


def short_echo(sentence: Sequence[str], message: Sequence[str]) -> bool:
    """A short sentence (its words) that is mostly a run of the message's words:
    "Mostly, love letters." after "Mostly love letters, birthday letters" (not one
    that turns it to "you": "You're a letter writer? How lovely")."""
    if {"you", "your", "you're", "yours"} & set(sentence):
        return False
    while sentence and sentence[0] in _INTERJECTIONS:  # "Yes, she works nights in Boston."
        sentence = sentence[1:]
    if len(sentence) < 3:
        return False
    run = longest_run(sentence, message)
    return run >= 3 and 2 * run > len(sentence)

