"""Prompt assembly: persona + state + recalled memories + history, within a token budget.

:func:`build_prompt` is a pure function. The layout keeps everything that does
not change between turns at the front, so a backend can reuse the KV cache of
that prefix::

    system   persona (unchanging)
    ...      conversation history, oldest first (grows at the end)
    system   private note: clock, mood and relationship, recalled memories,
             the persona's post-history instructions (changes every turn)
    user     the new message

What does not fit is dropped in this order: oldest history first, then the
least relevant memories, then the middle of an over-long user message (with a
marker the model sees and a note for the user). It never silently overflows:
when even the persona does not fit, it raises :class:`ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from companion.errors import ConfigError
from companion.llm.base import MESSAGE_OVERHEAD_TOKENS
from companion.types import Message

TokenCounter = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class PromptTemplates:
    """The prompt text around the persona (``config/prompts.toml``), placeholders filled."""

    context_header: str = "(Private notes for the assistant.)"
    memories: str = "Things you remember about the user that may matter now:\n{facts}"
    clock: str = "It is {now}."
    truncation_marker: str = "\n[... {omitted} characters omitted ...]\n"
    truncation_note: str = "Your message is {total:,} characters; the model saw {kept:,} of them."


@dataclass(frozen=True, slots=True)
class PromptInput:
    """Everything one prompt is made of."""

    system: str
    history: Sequence[Message] = ()
    #: Position of ``history[0]`` among all of this user's turns; lets the window
    #: of history move in blocks, so the prompt prefix stays the same for a while.
    history_ordinal: int = 0
    memories: Sequence[str] = ()
    state: str = ""
    clock: str = ""
    post_history: str = ""
    instruction: str = ""
    user: str = ""


@dataclass(frozen=True, slots=True)
class Prompt:
    """The messages for the model, and what had to be left out."""

    messages: tuple[Message, ...]
    tokens: int
    history_used: int
    history_dropped: int
    memories_used: int
    user_omitted_chars: int = 0
    notes: tuple[str, ...] = field(default=())


def message_tokens(count: TokenCounter, content: str) -> int:
    return count(content) + MESSAGE_OVERHEAD_TOKENS


def _context_text(t: PromptTemplates, inp: PromptInput, memories: Sequence[str]) -> str:
    parts = [t.context_header]
    if inp.clock:
        parts.append(t.clock.format(now=inp.clock))
    if inp.state:
        parts.append(inp.state)
    if memories:
        parts.append(t.memories.format(facts="\n".join(f"- {m}" for m in memories)))
    if inp.post_history:
        parts.append(inp.post_history)
    if inp.instruction:
        parts.append(inp.instruction)
    return "\n".join(p for p in parts if p)


def truncate_middle(text: str, max_tokens: int, count: TokenCounter, marker: str) -> str:
    """The start and end of ``text`` (2:1), joined by ``marker``, within ``max_tokens``."""
    if count(text) <= max_tokens:
        return text
    keep = len(text)
    while keep > 0:
        # Shrink by the measured ratio of characters to tokens, then check.
        ratio = max_tokens / max(count(text[:keep]), 1)
        keep = max(0, min(keep - 1, math.floor(keep * ratio * 0.95)))
        head, tail = keep * 2 // 3, keep - keep * 2 // 3
        candidate = (
            text[:head] + marker.format(omitted=len(text) - keep) + text[len(text) - tail :]
        )
        if count(candidate) <= max_tokens:
            return candidate
    return marker.format(omitted=len(text))


def _history_start(
    costs: Sequence[int], roles: Sequence[str], room: int, ordinal: int, block: int
) -> int:
    """First history index to keep: as much as fits, moved on in blocks of turns."""
    total, start = 0, len(costs)
    for i in range(len(costs) - 1, -1, -1):
        if total + costs[i] > room:
            break
        total += costs[i]
        start = i
    if start == 0:
        return 0
    # Round up to a block boundary (counted over all the user's turns) that
    # starts with a user message; the kept window then stays put for ~block turns.
    for i in range(start, len(costs)):
        if (ordinal + i) % block == 0 and roles[i] == "user":
            return i
    for i in range(start, len(costs)):
        if roles[i] == "user":
            return i
    return len(costs)


def build_prompt(
    inp: PromptInput,
    *,
    count: TokenCounter,
    budget: int,
    templates: PromptTemplates | None = None,
    block: int = 8,
) -> Prompt:
    """Assemble the messages for one generation within ``budget`` prompt tokens."""
    t = templates or PromptTemplates()
    system = Message("system", inp.system)
    fixed = message_tokens(count, inp.system)
    bare_context = _context_text(t, inp, ())
    fixed += message_tokens(count, bare_context)
    if fixed > budget:
        raise ConfigError(
            f"the persona and notes take {fixed} tokens but the model's window leaves "
            f"{budget} for the prompt: shorten the persona or raise context_tokens"
        )

    notes: list[str] = []
    user_text, omitted = inp.user, 0
    if inp.user:
        # An over-long message gets at most 3/4 of the room left, so the
        # memories and the last exchanges still fit beside it.
        room = (budget - fixed) * 3 // 4 - MESSAGE_OVERHEAD_TOKENS
        user_text = truncate_middle(inp.user, room, count, t.truncation_marker)
        if user_text != inp.user:
            kept = len(user_text) - len(t.truncation_marker.format(omitted=0))
            omitted = len(inp.user) - max(kept, 0)
            notes.append(t.truncation_note.format(total=len(inp.user), kept=max(kept, 0)))
        fixed += message_tokens(count, user_text)

    memories: list[str] = []
    context_cost = message_tokens(count, bare_context)
    for fact in inp.memories:
        trial = _context_text(t, inp, [*memories, fact])
        trial_cost = message_tokens(count, trial)
        if fixed - message_tokens(count, bare_context) + trial_cost > budget:
            break
        memories.append(fact)
        context_cost = trial_cost
    fixed += context_cost - message_tokens(count, bare_context)
    context = Message("system", _context_text(t, inp, memories))

    costs = [message_tokens(count, m.content) for m in inp.history]
    start = _history_start(
        costs, [m.role for m in inp.history], budget - fixed, inp.history_ordinal, block
    )
    history = tuple(inp.history[start:])
    messages = (system, *history, context)
    if inp.user:
        messages += (Message("user", user_text),)
    return Prompt(
        messages=messages,
        tokens=fixed + sum(costs[start:]),
        history_used=len(history),
        history_dropped=start,
        memories_used=len(memories),
        user_omitted_chars=omitted,
        notes=tuple(notes),
    )
