"""Prompt assembly: persona + state + recalled memories + history, within a token budget.

:func:`build_prompt` is a pure function. The layout keeps what was already
said where it was, so a backend can reuse the KV cache of everything before the
newest message and prefill only the new tokens::

    system   persona (unchanging)
    ...      the persona's example dialogue, then a line saying the real chat
             starts (while it fits beside the whole history; see below)
    ...      conversation history, oldest first (grows at the end); each
             earlier private note stays just before the user message it came with
    system   private note for this turn (only what is new, see below)
    user     the new message

The private note is a *delta*: the clock, the lines of the mood and relationship
block, and the recalled memories are written only when they differ from what the
notes still in the window already say (the newest value of each wins), and the
persona's post-history instructions are repeated every ``remind_every`` user
messages. At most ``max_new_memories`` memories are added per turn (the most
relevant first; the rest can come up later), since every token of the note is
prefilled before the first word of the reply. Recalled messages still in the
window are left out. A turn where nothing changed adds no note at all, so the
model prefills just the new message. When the window moves
on and drops an old note, what it said is written again if it still matters.

What does not fit is dropped in this order: the example dialogue (all of it,
once, so the cached prefix changes only then), oldest history first (with its
notes), then the least relevant memories, then the middle of an over-long user
message (with a marker the model sees and a note for the user). It never
silently overflows: when even the persona does not fit, it raises
:class:`ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

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
    examples_start: str = "(Those were examples. The real conversation starts now.)"
    examples_skipped: str = "The persona's example dialogue was left out: {why}."


@dataclass(frozen=True, slots=True)
class Note:
    """A private note as given to the model: its text and what it told (for deltas)."""

    text: str
    clock: str = ""
    #: Lines of the state block it wrote, by line number.
    state: tuple[tuple[int, str], ...] = ()
    memories: tuple[str, ...] = ()
    post_history: bool = False


@dataclass(frozen=True, slots=True)
class PromptInput:
    """Everything one prompt is made of."""

    system: str
    history: Sequence[Message] = ()
    #: Position of ``history[0]`` among all of this user's turns; lets the window
    #: of history move in blocks, so the prompt prefix stays the same for a while.
    history_ordinal: int = 0
    #: The note given with each history message (aligned with ``history``;
    #: None or missing for messages that had none).
    history_notes: Sequence[Note | None] = ()
    memories: Sequence[str] = ()
    #: For a memory that just repeats a past message (aligned with ``memories``):
    #: the index in ``history`` of that message, else None. It is left out while
    #: that message is still in the window.
    memory_quotes: Sequence[int | None] = ()
    state: str = ""
    clock: str = ""
    post_history: str = ""
    instruction: str = ""
    user: str = ""
    #: The persona's example dialogue, as earlier turns; used while it fits
    #: beside the whole history, left out (all of it) once the history needs the room.
    examples: Sequence[Message] = ()


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
    #: This turn's private note (None when nothing was new); keep it with the
    #: user's message and pass it back in ``history_notes``.
    note: Note | None = None
    #: How many example messages went in (0: none, or they did not fit).
    examples_used: int = 0


def message_tokens(count: TokenCounter, content: str) -> int:
    return count(content) + MESSAGE_OVERHEAD_TOKENS


def _note_text(
    t: PromptTemplates,
    *,
    clock: str = "",
    state: Sequence[str] = (),
    memories: Sequence[str] = (),
    post_history: str = "",
    instruction: str = "",
) -> str:
    parts = [t.clock.replace("{now}", clock) if clock else "", *state]
    if memories:
        # replace, not format: the user's name is in the template already, and may hold braces
        parts.append(t.memories.replace("{facts}", "\n".join(f"- {m}" for m in memories)))
    parts += [post_history, instruction]
    parts = [p for p in parts if p]
    return "\n".join([t.context_header, *parts]) if parts else ""


def _full_note(t: PromptTemplates, inp: PromptInput, memories: Sequence[str]) -> str:
    """The note with everything in it: what the budget is reserved for."""
    return _note_text(
        t, clock=inp.clock, state=inp.state.splitlines(), memories=memories,
        post_history=inp.post_history, instruction=inp.instruction,
    )


def _delta_note(
    t: PromptTemplates,
    inp: PromptInput,
    memories: Sequence[str],
    kept: Sequence[Message],
    kept_notes: Sequence[Note | None],
    remind_every: int,
    max_new_memories: int,
) -> Note | None:
    """The note for this turn: only what the notes still in the window do not say."""
    clock = ""
    state_now: dict[int, str] = {}
    seen: set[str] = set()
    users_since_post: int | None = None  # None: no reminder in the window
    for message, note in zip(kept, kept_notes, strict=True):
        if note is not None:
            clock = note.clock or clock
            state_now.update(dict(note.state))
            seen.update(note.memories)
            if note.post_history:
                users_since_post = 0
        if message.role == "user" and users_since_post is not None:
            users_since_post += 1
    history_text = "\n".join(m.content for m in kept)
    new_clock = inp.clock if inp.clock and inp.clock != clock else ""
    new_state = tuple(
        (i, line) for i, line in enumerate(inp.state.splitlines()) if state_now.get(i) != line
    )
    new_memories = tuple(m for m in memories if m not in seen and m not in history_text)
    new_memories = new_memories[:max_new_memories]
    remind = users_since_post is None or users_since_post >= remind_every
    post = bool(inp.post_history) and (remind or bool(inp.instruction))
    text = _note_text(
        t, clock=new_clock, state=[line for _, line in new_state], memories=new_memories,
        post_history=inp.post_history if post else "", instruction=inp.instruction,
    )
    if not text:
        return None
    return Note(text, new_clock, new_state, new_memories, post)


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
    remind_every: int = 4,
    max_new_memories: int = 2,
) -> Prompt:
    """Assemble the messages for one generation within ``budget`` prompt tokens."""
    t = templates or PromptTemplates()
    system = Message("system", inp.system)
    fixed = message_tokens(count, inp.system)
    bare_note = _full_note(t, inp, ())
    bare_cost = message_tokens(count, bare_note) if bare_note else 0
    fixed += bare_cost
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

    # Which history could stay at best (with no memories at all); memories that
    # quote a message from there are redundant.
    past = list(inp.history_notes)[: len(inp.history)]
    past += [None] * (len(inp.history) - len(past))
    costs = [
        message_tokens(count, m.content) + (message_tokens(count, n.text) if n else 0)
        for m, n in zip(inp.history, past, strict=True)
    ]
    earliest_kept = _history_start(
        costs, [m.role for m in inp.history], budget - fixed, inp.history_ordinal, block
    )

    # Room is reserved for the whole note (as if nothing had been said before);
    # the note actually sent is the delta, never longer.
    memories: list[str] = []
    note_cost = bare_cost
    quotes = list(inp.memory_quotes) + [None] * (len(inp.memories) - len(inp.memory_quotes))
    for fact, quote in zip(inp.memories, quotes, strict=False):
        if quote is not None and quote >= earliest_kept:
            continue  # the message itself is in the window: no need to recall it
        trial_cost = message_tokens(count, _full_note(t, inp, [*memories, fact]))
        if fixed - bare_cost + trial_cost > budget:
            break
        memories.append(fact)
        note_cost = trial_cost
    fixed += note_cost - bare_cost

    start = _history_start(
        costs, [m.role for m in inp.history], budget - fixed, inp.history_ordinal, block
    )
    examples: tuple[Message, ...] = ()
    if inp.examples:
        examples = (*inp.examples, Message("system", t.examples_start))
        room = budget - fixed - sum(costs)
        if start > 0 or sum(message_tokens(count, m.content) for m in examples) > room:
            examples = ()
            if not inp.history:
                notes.append(t.examples_skipped.format(why="it does not fit the model's window"))
    history = tuple(inp.history[start:])
    kept_notes = past[start:]
    note = _delta_note(t, inp, memories, history, kept_notes, remind_every, max_new_memories)
    messages: tuple[Message, ...] = (system, *examples)
    for message, past_note in zip(history, kept_notes, strict=True):
        if past_note is not None:
            messages += (Message("system", past_note.text),)
        messages += (message,)
    if note is not None:
        messages += (Message("system", note.text),)
    if inp.user:
        messages += (Message("user", user_text),)
    tokens = sum(message_tokens(count, m.content) for m in messages)
    return Prompt(
        messages=messages,
        tokens=tokens,
        history_used=len(history),
        history_dropped=start,
        memories_used=len(memories),
        user_omitted_chars=omitted,
        notes=tuple(notes),
        note=note,
        examples_used=len(examples),
    )


def with_message(prompt: Prompt, message: Message) -> Prompt:
    """``prompt`` with ``message`` added at the end (after the user's message)."""
    return replace(prompt, messages=(*prompt.messages, message))


def with_note(prompt: Prompt, note: Note) -> Prompt:
    """``prompt`` with its private note (the message before the user's) made ``note``."""
    messages = list(prompt.messages)
    if len(messages) >= 2 and messages[-2].role == "system" and prompt.note is not None:
        messages[-2] = Message("system", note.text)
    elif prompt.note is None:
        messages.insert(len(messages) - 1, Message("system", note.text))
    else:
        return prompt
    return replace(prompt, messages=tuple(messages), note=note)
