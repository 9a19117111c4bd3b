"""Questions about what she remembers, and facts worded for the reply.

Stored facts are about "User" in the third person ("User's sister is called
Maya.", "User writes letters."). In the private note they name the user
(:func:`about`); when the user asks what she remembers (:func:`is_memory_question`)
the reply is given the facts once more, right before it, as she would say them
to the user (:func:`to_you`: "your sister is called Maya", "you write letters").
"""

from __future__ import annotations

import re

from companion.persona import fill
from companion.types import MemoryItem

#: "Do you remember ...?", "What do you know about me?": answered from memory.
_MEMORY_QUESTION = re.compile(
    r"\b(?:do|did|can|don't|do not) you (?:still |even )?(?:remember|recall)\b"
    r"|\b(?:do|did) you know (?:about me|anything about me|who i am|what i do|my)\b"
    r"|\bwhat (?:do|did) you (?:remember|recall)\b|\bwhat (?:do|did) you know about me\b"
    r"|\bwhat have i told you\b",
    re.IGNORECASE,
)
#: Facts put in front of the model for a question about what she remembers.
MEMORY_QUESTION_FACTS = 8

_USER = re.compile(r"\bUser(?='s\b|\b)")
_BE_HAVE = {"is": "are", "was": "were", "has": "have", "does": "do", "isn't": "aren't",
            "wasn't": "weren't", "hasn't": "haven't", "doesn't": "don't"}  # fmt: skip
_SUBJECT_VERB = re.compile(r"\bUser (\w+(?:'t)?)")


def is_memory_question(text: str) -> bool:
    return _MEMORY_QUESTION.search(text) is not None


def about(fact: str, name: str) -> str:
    """A stored fact ("User's sister Maya ...") told about the user by name."""
    if not name or name == "User":
        return fact
    return _USER.sub(lambda _m: name, fact)


def to_you(fact: str) -> str:
    """A stored fact as said to the user: "User writes letters." -> "you write letters"."""
    text = fact.strip().rstrip(".")
    text = re.sub(r"\bUser's\b", "your", text)
    text = _SUBJECT_VERB.sub(lambda m: "you " + _base_form(m.group(1)), text)
    return _USER.sub("you", text)


def _base_form(verb: str) -> str:
    """The verb that goes with "you": is -> are, has -> have, writes -> write."""
    low = verb.lower()
    if low in _BE_HAVE:
        return _BE_HAVE[low]
    if low.endswith("ies") and len(low) > 4:
        return verb[:-3] + "y"
    if re.search(r"(?:ch|sh|x|ss|zz|o)es$", low):
        return verb[:-2]
    if low.endswith("s") and not low.endswith("ss") and len(low) > 3:
        return verb[:-1]
    return verb


def _is_fact(item: MemoryItem) -> bool:
    return item.kind not in ("episode", "summary")


def with_all_facts(recalled: list[MemoryItem], items: list[MemoryItem]) -> list[MemoryItem]:
    """``recalled``, then the user's other facts from ``items`` (newest first), up to
    :data:`MEMORY_QUESTION_FACTS` facts in all: a question about what she
    remembers is answered from them."""
    have = {(m.kind, m.id) for m in recalled}
    known = sum(_is_fact(m) for m in recalled)
    facts = [m for m in items if m.kind != "summary" and (m.kind, m.id) not in have]
    return [*recalled, *facts[: max(MEMORY_QUESTION_FACTS - known, 0)]]


def recap_text(template: str, recalled: list[MemoryItem], names: dict[str, str]) -> str:
    """The facts among ``recalled`` as she would say them to the user, in
    ``template`` (its ``{facts}``), names filled in; "" when she remembers nothing
    (then nothing is added, and her answer is not led, so she makes nothing up)."""
    facts = [to_you(m.text) for m in recalled if _is_fact(m)]
    if not facts:
        return ""
    # one line, not a list: a small model copies a list's layout, not its words
    return fill(template.replace("{facts}", "; ".join(facts)), **names)
