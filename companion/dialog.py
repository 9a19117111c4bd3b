"""The dialog manager: :class:`Companion` runs one turn of conversation.

One turn (:meth:`Companion.say`): clean the message, recall what matters,
update the persona state, build the prompt within the model's window, store
the user's turn (with the facts taken from it and the new state) in one
transaction, then stream the reply, which is stored when it ends, finished or
interrupted. Everything it can delegate lives elsewhere: the prompt
(:mod:`companion.prompt`), memory (:mod:`companion.memory`), the persona and
its state (:mod:`companion.persona`), generation (:mod:`companion.llm`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from companion.config import Config, load_config
from companion.llm.base import LLM
from companion.memory import LongTermMemory, Store, parse_forget_request
from companion.memory.base import Consolidating, Memory
from companion.paths import data_dir
from companion.persona import (
    Persona,
    begin_session,
    describe_state,
    fill,
    initial_state,
    load_persona,
    render_state,
    state_from_dict,
    state_to_dict,
    system_text,
    update_state,
)
from companion.prompt import Note, Prompt, PromptInput, build_prompt
from companion.prompts import Prompts, load_prompts
from companion.reply import Finished, Reply
from companion.text import clean_message
from companion.timefmt import ago, local_clock
from companion.types import GenerationParams, MemoryItem, Message, PersonaState, SessionInfo, Turn

Clock = Callable[[], datetime]

#: How many of the latest turns are read from the store for each prompt; the
#: prompt builder keeps as many of them as fit the model's window.
HISTORY_WINDOW = 400

#: The latest turns, already in the prompt's history, are not recalled again.
RECENT_TURNS = 20

#: The clock in the private note moves in steps, so that it is not new (and
#: written again) every turn.
CLOCK_STEP_MINUTES = 10

_NAME = re.compile(r"name is ([^.,;]+)", re.IGNORECASE)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _forgot(removed: list[MemoryItem]) -> str:
    if not removed:
        return "I couldn't find anything like that in what I remember."
    facts = sum(1 for i in removed if i.kind not in ("episode", "summary"))
    messages = sum(1 for i in removed if i.kind == "episode")
    return f"Done. I've forgotten it ({facts} fact(s), {messages} message(s) removed)."


class Companion:
    """A companion talking with one user: ``Companion.open(user="theo").say("hi")``."""

    def __init__(
        self,
        *,
        llm: LLM,
        store: Store,
        memory: Memory,
        persona: Persona,
        user: str,
        config: Config,
        prompts: Prompts | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        self.llm = llm
        self.store = store
        self.memory = memory
        self.persona = persona
        self.user = user
        self.config = config
        self.prompts = prompts or load_prompts()
        self._clock = clock
        self._last_reply: Reply[Turn | None] | None = None
        # The private note given with each user message (by turn id), so later
        # prompts repeat it unchanged and the model's cached prefix stays valid.
        self._notes: dict[int, Note] = {}
        self._session = self._begin_session()

    # -- opening and closing -------------------------------------------------

    @classmethod
    def open(
        cls,
        user: str | None = None,
        *,
        model: str | LLM | None = None,
        persona: str | Path | Persona | None = None,
        home: Path | str | None = None,
        config: Config | None = None,
        clock: Clock = _utcnow,
        progress: Callable[[str], None] | None = None,
        **settings: Any,
    ) -> Companion:
        """Open the companion for ``user`` with the configured (or given) model and persona.

        ``settings`` override the config (``temperature=0``, ``max_tokens=64``,
        ...). ``home`` overrides the data directory.
        """
        home_dir = Path(home) if home is not None else data_dir()
        if config is None:
            config = load_config(home=home_dir)
        overrides: dict[str, Any] = dict(settings, user=user)
        if isinstance(model, str):
            overrides["model"] = model
        if isinstance(persona, (str, Path)):
            overrides["persona"] = str(persona)
        config = config.with_overrides(**overrides)
        if not isinstance(persona, Persona):
            persona = load_persona(config.persona, user_dirs=[home_dir / "personas"])
        if model is None or isinstance(model, str):
            from companion.llm.loader import load_llm

            llm: LLM = load_llm(
                config.model, threads=config.threads, progress=progress, quantize=config.quantize
            )
        else:
            llm = model
        store = Store.open(home_dir / "companion.db")
        try:
            return cls(
                llm=llm,
                store=store,
                memory=LongTermMemory(store, skip_recent_turns=RECENT_TURNS),
                persona=persona,
                user=config.user,
                config=config,
                clock=clock,
            )
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        """Finish any reply in progress, end the session and close the store."""
        if self._last_reply is not None and not self._last_reply.done:
            self._last_reply.interrupt()
        self.store.end_session(self._session.id, self._clock())
        self.store.close()

    def __enter__(self) -> Companion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _begin_session(self) -> SessionInfo:
        now = self._clock()
        saved = self.store.load_state(self.user, self.persona.name)
        state = state_from_dict(saved) if saved else initial_state(self.persona, now)
        self._state = begin_session(state, now)
        with self.store.transaction():
            session = self.store.start_session(self.user, now)
            self.store.save_state(self.user, self.persona.name, state_to_dict(self._state), now)
        if isinstance(self.memory, Consolidating):  # between sessions, not during a reply
            self.memory.consolidate(self.user, keep_session=session.id)
        return session

    # -- conversation --------------------------------------------------------

    def say(self, text: str) -> Reply[Turn | None]:
        """Take the user's message and return the companion's reply (streamed lazily).

        Raises :class:`~companion.errors.InputError` for an empty message (no
        model call is made) and :class:`~companion.errors.ConfigError` when the
        persona alone does not fit the model's window.
        """
        text = clean_message(text)
        self._settle_last_reply()
        request = parse_forget_request(text)
        if request is not None:  # "forget that": done here, not stored, no model call
            removed = self.memory.forget(self.user, "last" if request.last else request.words)
            return self._reply_from(iter([_forgot(removed)]))
        now = self._clock()
        recalled = self.memory.recall(self.user, text, limit=self.config.recall_limit)
        last_talked = self._state.relationship.last_seen
        state = update_state(self._state, self.persona, text, now)
        prompt = self._prompt(state, now, user=text, memories=recalled, last_talked=last_talked)
        with self.store.transaction():
            turn = self.store.add_turn(self.user, self._session.id, "user", text, now)
            self.memory.remember(turn)
            self.store.save_state(self.user, self.persona.name, state_to_dict(state), now)
        self._state = state
        if prompt.note is not None:
            self._notes[turn.id] = prompt.note
        return self._reply(prompt)

    def greet(self) -> Reply[Turn | None]:
        """Open the session: the persona's first message to a new user, or a
        greeting that picks up from the last session with a returning one."""
        self._settle_last_reply()
        last = self.store.last_session(self.user, exclude=self._session.id)
        if last is None:
            text = fill(self.persona.first_mes or "Hi, {{user}}.", **self._names())
            return self._reply_from(iter([text]))
        now = self._clock()
        when = ago(last.ended_at or last.started_at, now)
        instruction = fill(self.prompts.greeting_returning, **self._names()).format(
            last_time=when
        )
        prefill = fill(self.prompts.greeting_prefill, **self._names())
        prompt = self._prompt(
            self._state, now, user="", instruction=instruction,
            last_talked=self._state.relationship.last_seen,
        )
        return self._reply(prompt, prefill=prefill)

    def new_session(self) -> Reply[Turn | None]:
        """End this session and start another; returns the new session's greeting."""
        self._settle_last_reply()
        self.store.end_session(self._session.id, self._clock())
        self._session = self._begin_session()
        return self.greet()

    def switch_persona(self, persona: Persona) -> None:
        """Talk as another persona from now on (each persona keeps its own state)."""
        self._settle_last_reply()
        now = self._clock()
        saved = self.store.load_state(self.user, persona.name)
        self.persona = persona
        self._state = state_from_dict(saved) if saved else initial_state(persona, now)
        self.store.save_state(self.user, persona.name, state_to_dict(self._state), now)

    def cut_reply(self, reply: Reply[Turn | None], spoken: str) -> Turn | None:
        """The user cut ``reply`` off (barge-in): keep only ``spoken``, the part
        they heard, stored as interrupted. Works whether the text had finished
        generating or not; returns the stored turn (None when nothing was said)."""
        spoken = spoken.strip()
        if not reply.done:
            reply.interrupt(kept=spoken)
            return reply.result
        turn = reply.result
        if turn is None:
            return None
        if not spoken:
            self.store.delete_turn(turn.id)
            reply.result = None
            return None
        reply.result = self.store.amend_turn(turn.id, spoken, interrupted=True)
        return reply.result

    # -- what she knows ------------------------------------------------------

    @property
    def session(self) -> SessionInfo:
        return self._session

    @property
    def state(self) -> PersonaState:
        return self._state

    def mood(self) -> str:
        """The persona state in words and numbers (``/mood``)."""
        return describe_state(self._state, self.persona, now=self._clock())

    def memories(self) -> list[MemoryItem]:
        return self.memory.items(self.user)

    def forget(self, target: int | str) -> list[MemoryItem]:
        """Forget facts by id or by words; returns what was removed."""
        return self.memory.forget(self.user, target)

    def history(self, limit: int = 50) -> list[Turn]:
        return self.store.recent_turns(self.user, limit)

    def export(self) -> dict[str, Any]:
        """Everything stored about this user, as JSON-ready data."""
        return self.store.export_user(self.user)

    def user_name(self) -> str:
        """The user's name if they told it, else their user id."""
        for item in self.memory.items(self.user):
            if item.kind == "name" and (m := _NAME.search(item.text)):
                return m.group(1).strip()
        return self.user

    # -- internals -----------------------------------------------------------

    def _names(self) -> dict[str, str]:
        return {"char": self.persona.name, "user": self.user_name()}

    def _settle_last_reply(self) -> None:
        # A reply not yet read is finished first, so the conversation stays in order.
        if self._last_reply is not None and not self._last_reply.done:
            self._last_reply.text()

    def _prompt(
        self,
        state: PersonaState,
        now: datetime,
        *,
        user: str,
        memories: list[MemoryItem] | None = None,
        instruction: str = "",
        last_talked: datetime | None = None,
    ) -> Prompt:
        names = self._names()
        window = self.store.recent_turns(self.user, HISTORY_WINDOW)
        position = {t.id: i for i, t in enumerate(window)}
        quotes = [
            position.get(m.id) if m.kind == "episode" else None for m in memories or ()
        ]
        ordinal = self.store.count_turns(self.user) - len(window)
        budget = min(self.config.context_tokens, self.llm.context_length)
        return build_prompt(
            PromptInput(
                system=system_text(self.persona, names["user"]),
                history=[Message(t.role, t.content) for t in window],
                history_ordinal=ordinal,
                history_notes=[self._notes.get(t.id) for t in window],
                memories=[m.text for m in memories or ()],
                memory_quotes=quotes,
                state=render_state(
                    state, self.persona, now=now, user_name=names["user"], last_talked=last_talked
                ),
                clock=local_clock(now, step_minutes=CLOCK_STEP_MINUTES),
                post_history=fill(self.persona.post_history_instructions, **names),
                instruction=instruction,
                user=user,
            ),
            count=self.llm.count_tokens,
            budget=budget - self.config.max_tokens,
            templates=self.prompts.templates(**names),
        )

    def _params(self, prefill: str = "") -> GenerationParams:
        name = self.user_name()
        # A small model sometimes copies its private note into the reply: the
        # reply ends where the note's own opening words would begin.
        t = self.prompts.templates(**self._names())
        leaks = (t.context_header, t.memories.split("{facts}")[0].strip())
        stops = tuple(dict.fromkeys((
            f"\n{name}:", f"\n{self.user}:", "\nUser:", "\nuser:", *(s for s in leaks if s),
        )))  # fmt: skip
        return GenerationParams(
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            seed=self.config.seed,
            stop=stops,
            prefill=prefill,
        )

    def _reply(self, prompt: Prompt, *, prefill: str = "") -> Reply[Turn | None]:
        chunks = self.llm.stream(prompt.messages, self._params(prefill))
        return self._reply_from(chunks, prefix=prefill, notes=prompt.notes)

    def _reply_from(
        self, chunks: Iterator[str], *, prefix: str = "", notes: tuple[str, ...] = ()
    ) -> Reply[Turn | None]:
        session_id = self._session.id

        def store(done: Finished) -> Turn | None:
            text = done.text.strip()
            if not text:
                return None
            return self.store.add_turn(
                self.user, session_id, "assistant", text, self._clock(),
                interrupted=done.interrupted,
            )

        self._last_reply = Reply(chunks, store, prefix=prefix, notes=notes)
        return self._last_reply
