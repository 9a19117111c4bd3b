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
from zoneinfo import ZoneInfo

from companion.agenda.ask import is_agenda_question
from companion.agenda.desk import AgendaDesk
from companion.agenda.fire import Poller
from companion.agenda.intake import Entry
from companion.agenda.model import AgendaItem, Notice, Status
from companion.config import Config, load_config
from companion.errors import InputError
from companion.guard import GUARD_RETRIES, GuardOutcome, guarded
from companion.guard import Context as GuardContext
from companion.llm.base import LLM
from companion.memory import LongTermMemory, Store, parse_forget_request
from companion.memory.base import Consolidating, Memory
from companion.overrides import apply_overrides, check_overrides
from companion.paths import data_dir
from companion.persona import (
    Persona,
    begin_session,
    describe_state,
    fill,
    initial_state,
    load_persona,
    state_from_dict,
    state_to_dict,
    update_state,
)
from companion.prompt import Prompt, with_message, with_note
from companion.prompts import Prompts, load_prompts
from companion.recollect import (
    is_memory_question,
    recap_text,
    with_all_facts,
)
from companion.reply import Finished, Reply
from companion.replycheck import greeted
from companion.text import clean_message
from companion.timefmt import ago
from companion.turnparams import generation_params, reply_stops, sampling_settings
from companion.turnprompt import TurnPrompts
from companion.types import GenerationParams, MemoryItem, Message, PersonaState, SessionInfo, Turn

Clock = Callable[[], datetime]

#: The latest turns, already in the prompt's history, are not recalled again.
RECENT_TURNS = 20

_NAME = re.compile(r"name is ([^.,;]+)", re.IGNORECASE)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _window_notes(prompt: Prompt, recap: str = "") -> str:
    """Every private note in ``prompt`` (the system messages after the persona's
    system prompt): this turn's, and the earlier ones still in the window, whose
    mood or clock lines she could read aloud as well ("You feel warm and curious");
    not ``recap``, the facts she is meant to say back."""
    return "\n".join(
        m.content for m in prompt.messages[1:] if m.role == "system" and m.content != recap
    )


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
        #: What the reply guard did for the last reply (None: it did not run).
        self.last_guard: GuardOutcome | None = None
        #: Earlier versions of the last reply (``retry``), oldest first.
        self.swipes: list[str] = []
        #: Reminders and plans read from the user's messages (see :mod:`companion.agenda`).
        self.desk = AgendaDesk(store, user, config, self.prompts.plans, clock,
                               lambda: self._session)
        #: The prompt of each reply, and what keeps its cached prefix stable.
        self._prompts = TurnPrompts(store, user, config, llm, self.prompts, self.zone)
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
                config.model, threads=config.threads, progress=progress, quantize=config.quantize,
                engine=config.engine, draft=config.draft,
            )
        else:
            llm = model
        return cls.build(llm=llm, persona=persona, config=config, home=home_dir, clock=clock)

    @classmethod
    def build(
        cls,
        *,
        llm: LLM,
        persona: Persona,
        config: Config,
        home: Path,
        clock: Clock = _utcnow,
        wrap_memory: Callable[[Memory], Memory] | None = None,
    ) -> Companion:
        """The companion of ``config.user`` on a loaded model: the one way to put
        one together (:meth:`open` and the server's sessions both come here).

        The store in ``home`` is opened here and closed with the companion; its
        long-term memory is wrapped by ``wrap_memory`` when given (the server
        times recall so). A wrapper must keep ``consolidate`` to keep memory
        condensed between sessions.
        """
        store = Store.open(home / "companion.db")
        try:
            memory: Memory = LongTermMemory(store, skip_recent_turns=RECENT_TURNS)
            return cls(
                llm=llm,
                store=store,
                memory=wrap_memory(memory) if wrap_memory is not None else memory,
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

    def say(self, text: str, **overrides: Any) -> Reply[Turn | None]:
        """Take the user's message and return the companion's reply (streamed lazily).

        ``overrides`` change this reply's generation settings only: any field of
        :class:`~companion.types.GenerationParams` (``max_tokens``,
        ``temperature``, ``top_p``, ``seed``, ...; ``None`` keeps the config's),
        with ``stop`` strings added to hers (see :mod:`companion.overrides`).

        Raises :class:`~companion.errors.InputError` for an empty message or a
        bad setting (no model call is made, nothing is stored), :class:`TypeError`
        for an unknown setting and :class:`~companion.errors.ConfigError` when the
        persona alone does not fit the model's window.
        """
        settings = check_overrides(overrides)
        text = clean_message(text)
        self._settle_last_reply()
        request = parse_forget_request(text)
        if request is not None:  # "forget that": done here, not stored, no model call
            removed = self.memory.forget(self.user, "last" if request.last else request.words)
            return self._reply_from(iter([_forgot(removed)]))
        now = self._clock()
        if is_agenda_question(text):  # from the store: the model would invent times
            return self._answer_plainly(text, self.desk.answer(text, now), now)
        entry = self.desk.read(text, now)
        if entry is not None and entry.question:  # a reminder she cannot set as said
            return self._answer_plainly(text, entry.question, now)
        prompt, recalled, question, state, names = self._turn_prompt(text, now, settings, entry)
        with self.store.transaction():
            turn = self.store.add_turn(self.user, self._session.id, "user", text, now)
            self.memory.remember(turn)
            self.store.save_state(self.user, self.persona.name, state_to_dict(state), now)
            if entry is not None:
                self.desk.file(entry, now, turn.id)
        self._state = state
        if prompt.note is not None:
            self._prompts.notes[turn.id] = prompt.note
        self.swipes = []
        return self._answer(prompt, question, recalled, names, settings, text, entry=entry)

    def prompt_for(
        self, text: str, **overrides: Any
    ) -> tuple[tuple[Message, ...], GenerationParams]:
        """What :meth:`say` would send the model for ``text`` now (the messages and
        the settings), storing and changing nothing: for a voice loop that starts
        reading the prompt while the user may still go on (speculation)."""
        settings = check_overrides(overrides)
        text = clean_message(text)
        prompt, _recalled, _question, _state, names = self._turn_prompt(
            text, self._clock(), settings, None
        )
        return prompt.messages, self._params(names, "", settings, user_text=text)

    def _turn_prompt(
        self, text: str, now: datetime, settings: dict[str, Any], entry: Entry | None
    ) -> tuple[Prompt, list[MemoryItem], bool, PersonaState, dict[str, str]]:
        """The prompt of a reply to ``text``, with what went into it."""
        recalled = self.memory.recall(self.user, text, limit=self.config.recall_limit)
        question = is_memory_question(text)
        if question:
            recalled = with_all_facts(recalled, self.memory.items(self.user))
        last_talked = self._state.relationship.last_seen
        state = update_state(self._state, self.persona, text, now)
        names = self._names()  # read once a turn: it looks through every fact
        prompt = self._prompts.build(
            self.persona, state, now, names, user=text, memories=recalled, last_talked=last_talked,
            reply_tokens=settings.get("max_tokens"), question=question,
            instruction=fill(entry.note, **names) if entry else "",
        )
        return prompt, recalled, question, state, names

    def retry(self, **overrides: Any) -> Reply[Turn | None]:
        """Another reply to the user's last message (SillyTavern's swipe).

        The last reply is taken out of the store and the prompt (and so out of
        the model's cached prefix) and kept in :attr:`swipes`; the new one is
        stored in its place, sampled with another seed. Raises
        :class:`InputError` when there is no reply to the user's last message
        in this session.
        """
        settings = check_overrides(overrides)
        self._settle_last_reply()
        window = self.store.recent_turns(self.user, 2)
        if (
            len(window) < 2
            or window[-1].role != "assistant"
            or window[-2].role != "user"
            or window[-1].session_id != self._session.id
            or window[-2].session_id != self._session.id
        ):
            raise InputError("nothing to retry yet: say something first")
        old, asked = window[-1], window[-2]
        names = self._names()
        question = is_memory_question(asked.content)
        recalled = self.memory.recall(self.user, asked.content, limit=self.config.recall_limit)
        if question:
            recalled = with_all_facts(recalled, self.memory.items(self.user))
        prompt = self._prompts.build(
            self.persona, self._state, self._clock(), names, user=asked.content, memories=recalled,
            last_talked=self._state.relationship.last_seen, question=question,
            reply_tokens=settings.get("max_tokens"), before=asked.id,
        )
        if asked.id in self._prompts.notes:  # the note first given with it keeps the cache
            prompt = with_note(prompt, self._prompts.notes[asked.id])
        # Only now, with the new prompt ready, does the old reply go.
        self.store.delete_turn(old.id)
        self.swipes.append(old.content)
        # each swipe, with its own guard retries, draws other seeds than the last
        return self._answer(
            prompt, question, recalled, names, settings, asked.content,
            attempt=(GUARD_RETRIES + 1) * len(self.swipes), entry=self.desk.entry(asked.id),
        )

    def _answer(
        self,
        prompt: Prompt,
        question: bool,
        recalled: list[MemoryItem],
        names: dict[str, str],
        overrides: dict[str, Any],
        user_text: str,
        *,
        attempt: int = 0,
        entry: Entry | None = None,
    ) -> Reply[Turn | None]:
        """The reply to ``user_text``; to a question about what she remembers, with
        the facts once more after it and the answer's first words given; to a
        message that set a reminder, starting with its confirmation, and never
        stating another time than the agenda's."""
        prefill = fill(entry.prefill, **names) if entry else ""
        recap = ""
        if question and (recap := recap_text(self.prompts.memory_recap, recalled, names)):
            prompt = with_message(prompt, Message("system", recap))
            prefill = prefill or fill(self.prompts.memory_prefill, **names)
        wrong_time, fallback = None, None
        if entry is not None:
            # the confirmation says what matters: one sentence of her own after it
            overrides = {"max_sentences": 1, **overrides}
            fallback = fill(entry.confirmation, **names)
            now = self._clock()

            def wrong_time(text: str) -> bool:
                return entry.wrong_time(text, now)

        return self._reply(
            prompt, names, overrides=overrides, user_text=user_text, attempt=attempt,
            prefill=prefill, wrong_time=wrong_time, fallback=fallback, recap=recap,
        )

    def _answer_plainly(self, text: str, answer: str, now: datetime) -> Reply[Turn | None]:
        """A reply that does not come from the model (a question about the
        agenda, a reminder she must ask about): the message is stored, and the
        answer streamed and stored as hers."""
        with self.store.transaction():
            turn = self.store.add_turn(self.user, self._session.id, "user", text, now)
            self.memory.remember(turn)
        return self._reply_from(iter([answer]))

    def greet(self) -> Reply[Turn | None]:
        """Open the session: the persona's first message to a new user, or a
        greeting that picks up from the last session with a returning one."""
        self._settle_last_reply()
        last = self.store.last_session(self.user, exclude=self._session.id)
        names = self._names()
        if last is None:
            text = fill(self.persona.first_mes or "Hi, {{user}}.", **names)
            return self._reply_from(iter([text]))
        now = self._clock()
        when = ago(last.ended_at or last.started_at, now)
        instruction = fill(self.prompts.greeting_returning.replace("{last_time}", when), **names)
        prefill = fill(self.prompts.greeting_prefill, **names)
        prompt = self._prompts.build(
            self.persona, self._state, now, names, user="", instruction=instruction,
            last_talked=self._state.relationship.last_seen,
        )
        # checked for her notes read aloud and help-desk talk (not against the
        # user's last words: picking them up again is what a greeting is for)
        return self._reply(prompt, names, prefill=prefill)

    def new_session(self) -> Reply[Turn | None]:
        """End this session and start another; returns the new session's greeting."""
        self._settle_last_reply()
        self.store.end_session(self._session.id, self._clock())
        self._session = self._begin_session()
        self._prompts.restart()
        return self.greet()

    def switch_persona(self, persona: Persona) -> None:
        """Talk as another persona from now on (each persona keeps its own state)."""
        self._settle_last_reply()
        now = self._clock()
        saved = self.store.load_state(self.user, persona.name)
        self.persona = persona
        self._prompts.restart(persona_changed=True)
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

    # -- the agenda ----------------------------------------------------------

    def zone(self) -> ZoneInfo:
        """The user's time zone (config ``timezone``, else the system's)."""
        return self.desk.zone()

    def agenda(self, statuses: tuple[Status, ...] = ("pending", "snoozed")) -> list[AgendaItem]:
        """The user's reminders and plans, soonest first."""
        return self.desk.items(statuses)

    @property
    def clock(self) -> Clock:
        return self._clock

    def poller(self) -> Poller:
        """What asks for due notices in this session (see :mod:`companion.agenda.fire`)."""
        return self.desk.poller()

    def due(self) -> list[Notice]:
        """What she says now without being asked: due reminders (each occurrence
        once) and, after a long silence, a check-in or how a plan went (within
        the config's limits). They are stored as her turns and returned:
        returning them is delivering them."""
        return self.desk.due()

    def opening(self) -> list[Notice]:
        """What she says as the session opens: the day's briefing (once a day)
        and how past plans went (once each), stored as her turns and returned."""
        return self.desk.opening()

    # -- internals -----------------------------------------------------------

    def _names(self) -> dict[str, str]:
        """The persona's and the user's names, as the templates call them."""
        return {"char": self.persona.name, "user": self.user_name()}

    def _settle_last_reply(self) -> None:
        # A reply not yet read is finished first, so the conversation stays in order.
        if self._last_reply is not None and not self._last_reply.done:
            self._last_reply.text()

    def _params(
        self,
        names: dict[str, str],
        prefill: str = "",
        overrides: dict[str, Any] | None = None,
        *,
        user_text: str = "",
        attempt: int = 0,
    ) -> GenerationParams:
        stops = reply_stops(
            self.prompts.templates(**names), (names["user"], self.user),
            in_sentences=sampling_settings(self.config, self.persona.sampling)["max_sentences"] > 0,
        )
        params = generation_params(
            self.config, self.persona.sampling, stop=stops, prefill=prefill, echo=user_text,
            attempt=attempt,
        )
        return apply_overrides(params, overrides or {})

    def _reply(
        self,
        prompt: Prompt,
        names: dict[str, str],
        *,
        prefill: str = "",
        overrides: dict[str, Any] | None = None,
        user_text: str = "",
        attempt: int = 0,
        wrong_time: Callable[[str], bool] | None = None,
        fallback: str | None = None,
        recap: str = "",
    ) -> Reply[Turn | None]:
        def stream(n: int) -> Iterator[str]:
            params = self._params(
                names, prefill, overrides, user_text=user_text, attempt=attempt + n
            )
            return self.llm.stream(prompt.messages, params)

        notes = (*self._prompts.pending, *prompt.notes)
        self._prompts.pending.clear()
        self.last_guard = None
        if not self.config.reply_guard:  # (a greeting is checked too: user_text "")
            return self._reply_from(stream(0), prefix=prefill, notes=notes)
        recent = self.store.recent_turns(self.user, 8)
        mine = [t.content for t in recent if t.role == "assistant"]
        theirs = [t.content for t in recent if t.role == "user" and t.content != user_text]
        last = mine[-1] if mine else ""
        context = GuardContext(
            user_text=user_text,
            persona_name=self.persona.name,
            has_spoken=bool(last) or self._state.relationship.turns > 1,
            last_reply=last,
            recent="\n".join(mine[-3:]),
            user_before=theirs[-1] if theirs else "",
            user_name=names["user"] if names["user"] != self.user else "",
            wrong_time=wrong_time,
            fallback=fallback,
            note=_window_notes(prompt, recap),
            instead=self._instead(user_text),
            prefilled=bool(prefill),
        )
        outcome = self.last_guard = GuardOutcome()
        chunks = guarded(stream, context, outcome)
        return self._reply_from(chunks, prefix=prefill, notes=notes, outcome=outcome)

    def _instead(self, user_text: str) -> str:
        """What she says when every try at a reply failed the guard and nothing of it
        was left: a line that listens, or a greeting back to a greeting."""
        p = self.prompts
        lines = p.guard_instead_hello if greeted(user_text) else p.guard_instead
        return lines[self._state.relationship.turns % len(lines)] if lines else ""

    def _reply_from(
        self,
        chunks: Iterator[str],
        *,
        prefix: str = "",
        notes: tuple[str, ...] = (),
        outcome: GuardOutcome | None = None,
    ) -> Reply[Turn | None]:
        session_id = self._session.id

        def store(done: Finished) -> Turn | None:
            text = done.text.strip()
            if not text:
                return None
            return self.store.add_turn(
                self.user, session_id, "assistant", text, self._clock(),
                interrupted=done.interrupted, flagged=outcome is not None and outcome.failed,
            )

        self._last_reply = Reply(chunks, store, prefix=prefix, notes=notes)
        return self._last_reply
