"""An optional model-assisted extractor, for when a capable model is configured.

:class:`LMExtractor` asks the model for facts as plain lines (``kind: User ...``),
no tool calls and no JSON, and keeps only the lines that pass validation:

- the kind is one of :data:`~companion.memory.base.FACT_KINDS`;
- the text is one short third-person sentence about the user ("User ..."),
  and does not read like an instruction (:func:`looks_like_instructions`);
- it is grounded: most of its content words occur in the user's message, so
  the model cannot add what the user did not say.

The rule extractor always runs too, so a small model that answers badly loses
nothing: its lines are dropped and the rules' facts remain. A model error
(:class:`~companion.errors.ModelError`) falls back to the rules alone.
"""

from __future__ import annotations

import re
from datetime import datetime

from companion.errors import ModelError
from companion.llm.base import LLM
from companion.memory import fts
from companion.memory.base import FACT_KINDS, Extractor, Fact, FactKind
from companion.memory.facts import RuleExtractor, looks_like_instructions
from companion.types import GenerationParams, Message

PROMPT = """List the facts about the user stated in the message, one per line, as
KIND: User ...
KIND is one of: name, work, person, place, like, dislike, plan, fact.
Only what the message says. If there is none, write NONE.

Message: {message}
Facts:"""

#: Most facts one message may yield, the longest fact, and the share of a fact's
#: content words that must occur in the message.
MAX_FACTS, MAX_CHARS, GROUNDED = 5, 160, 0.75

_LINE = re.compile(r"^\W*(?P<kind>[a-z]+)\s*:\s*(?P<text>User\b.+?)\s*$", re.IGNORECASE)


def validate(line: str, message: str) -> Fact | None:
    """The fact a model's line states, if it passes every check; else None."""
    m = _LINE.match(line)
    if m is None:
        return None
    kind, text = m.group("kind").lower(), " ".join(m.group("text").split())
    if kind not in FACT_KINDS or len(text) > MAX_CHARS or looks_like_instructions(text):
        return None
    if "\n" in text or text.count(".") > 1:
        return None
    words = [w[:4] for w in fts.words(text) if w not in ("user", "s")]  # crude stems
    said = {w[:4] for w in fts.words(message[:4000])}
    if not words or sum(w in said for w in words) / len(words) < GROUNDED:
        return None
    if not text.endswith((".", "!")):
        text += "."
    kinds: dict[str, FactKind] = {k: k for k in FACT_KINDS}
    return Fact(kinds[kind], text)


class LMExtractor:
    """Rules plus a model's validated suggestions (see the module's docstring)."""

    def __init__(self, llm: LLM, rules: Extractor | None = None, max_tokens: int = 96) -> None:
        self.llm = llm
        self.rules: Extractor = rules if rules is not None else RuleExtractor()
        self.max_tokens = max_tokens

    def extract(self, text: str, now: datetime) -> list[Fact]:
        facts = self.rules.extract(text, now)
        if looks_like_instructions(text):
            return facts
        prompt = [Message("user", PROMPT.format(message=text[:2000]))]
        params = GenerationParams(max_tokens=self.max_tokens, temperature=0.0)
        try:
            reply = "".join(self.llm.stream(prompt, params))
        except ModelError:
            return facts
        seen = {f.text.casefold() for f in facts}
        for line in reply.splitlines()[: MAX_FACTS * 2]:
            fact = validate(line, text)
            if fact is not None and fact.text.casefold() not in seen and len(facts) < MAX_FACTS:
                facts.append(fact)
                seen.add(fact.text.casefold())
        return facts
