"""The prompt of each reply in one session, and what keeps its prefix stable.

:class:`TurnPrompts` reads the history window from the store and hands
everything to the pure :func:`~companion.prompt.build_prompt`. Between turns it
keeps what must not change under the model's cached prefix: the user's name as
the system prompt first gave it, whether the persona's example dialogue has left
the prompt (once gone it stays gone), and the private note given with each user
message (a later prompt repeats it unchanged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, tzinfo

from companion.config import Config
from companion.llm.base import LLM
from companion.memory import Store
from companion.persona import Persona, examples, fill, render_state, system_text
from companion.prompt import Note, Prompt, PromptInput, build_prompt
from companion.prompts import Prompts
from companion.recollect import MEMORY_QUESTION_FACTS, about
from companion.timefmt import local_clock
from companion.types import MemoryItem, Message, PersonaState, Turn

#: How many of the latest turns are read from the store for each prompt; the
#: prompt builder keeps as many of them as fit the model's window.
HISTORY_WINDOW = 400

#: The clock in the private note moves in steps, so that it is not new (and
#: written again) every turn.
CLOCK_STEP_MINUTES = 10


def without_flagged(window: list[Turn]) -> list[Turn]:
    """``window`` without the exchanges whose reply the reply guard could not fix:
    the model never sees such a reply again (a stand-in would be copied), and
    leaving out the message it answered too keeps user and assistant alternating."""
    drop = {t.id for t in window if t.flagged}
    drop |= {
        window[i - 1].id for i, t in enumerate(window)
        if t.flagged and i > 0 and window[i - 1].role == "user"
    }
    return [t for t in window if t.id not in drop]


class TurnPrompts:
    """Builds the prompts of one session for one user."""

    def __init__(
        self, store: Store, user: str, config: Config, llm: LLM, prompts: Prompts,
        zone: Callable[[], tzinfo],
    ) -> None:
        self.store = store
        self.user = user
        self.config = config
        self.llm = llm
        self.prompts = prompts
        self._zone = zone
        #: The private note given with each user message, by turn id.
        self.notes: dict[int, Note] = {}
        #: Lines for the user (not the model) to show with the next reply.
        self.pending: list[str] = []
        self._named: str | None = None
        self._examples_noted = False
        #: The example dialogue left the prompt (the history needed the room); it
        #: does not come back, so the cached prefix changes only once.
        self._examples_dropped = False

    def restart(self, *, persona_changed: bool = False) -> None:
        """A new session or persona: the system prompt may change once."""
        self._named = None
        if persona_changed:
            self._examples_noted = self._examples_dropped = False

    def system_name(self, names: dict[str, str]) -> str:
        """The user's name as the system prompt gives it: the one known when the
        session's first prompt was made. A name told later comes through the
        notes, so the long persona prefix stays cached instead of being read again."""
        if self._named is None:
            self._named = names["user"]
        return self._named

    def build(
        self,
        persona: Persona,
        state: PersonaState,
        now: datetime,
        names: dict[str, str],
        *,
        user: str,
        memories: list[MemoryItem] | None = None,
        instruction: str = "",
        last_talked: datetime | None = None,
        reply_tokens: int | None = None,
        question: bool = False,
        before: int | None = None,
    ) -> Prompt:
        """The prompt for a reply to ``user`` (for a retry: to the turn ``before``,
        with the history before it)."""
        # The persona's part (system prompt, examples) keeps the session's first
        # name for the user, so that its cached prefix stays valid.
        stable = {**names, "user": self.system_name(names)}
        window = self.store.recent_turns(self.user, HISTORY_WINDOW + 2)
        if before is not None:
            window = [t for t in window if t.id < before]
        window = window[-HISTORY_WINDOW:]
        # the position of window[0] among all the user's turns (a retry's window
        # stops before the asked message and the reply being replaced)
        trailing = 2 if before is not None else 0
        ordinal = self.store.count_turns(self.user) - len(window) - trailing
        window = without_flagged(window)
        position = {t.id: i for i, t in enumerate(window)}
        quotes = [
            position.get(m.id) if m.kind == "episode" else None for m in memories or ()
        ]
        budget = min(self.config.context_tokens, self.llm.context_length)
        offered = () if self._examples_dropped else self._examples(persona, stable)
        prompt = build_prompt(
            PromptInput(
                system=system_text(persona, stable["user"]),
                history=[Message(t.role, t.content) for t in window],
                history_ordinal=ordinal,
                history_notes=[self.notes.get(t.id) for t in window],
                memories=[about(m.text, names["user"]) for m in memories or ()],
                memory_quotes=quotes,
                state=render_state(
                    state, persona, now=now, user_name=names["user"], last_talked=last_talked
                ),
                clock=local_clock(now, step_minutes=CLOCK_STEP_MINUTES, zone=self._zone()),
                post_history=fill(persona.post_history_instructions, **names),
                instruction="\n".join(filter(None, (
                    instruction, fill(self.prompts.memory_question, **names) if question else "",
                ))),
                user=user,
                examples=offered,
            ),
            count=self.llm.count_tokens,
            budget=budget - (reply_tokens or self.config.max_tokens),
            templates=replace(
                self.prompts.templates(**names),
                examples_start=self.prompts.templates(**stable).examples_start,
            ),
            max_new_memories=MEMORY_QUESTION_FACTS if question else 2,
        )
        if offered and not prompt.examples_used and before is None:
            self._examples_dropped = True
        return prompt

    def _examples(self, persona: Persona, names: dict[str, str]) -> tuple[Message, ...]:
        """The persona's example dialogue as messages (a one-line notice, once, when
        it is there but cannot be read)."""
        pairs = examples(persona, names["user"])
        if persona.mes_example.strip() and not pairs and not self._examples_noted:
            self._examples_noted = True
            self.pending.append(
                self.prompts.examples_skipped.format(
                    why="no {{user}}: / {{char}}: lines found in it"
                )
            )
        return tuple(Message(role, text) for role, text in pairs)
