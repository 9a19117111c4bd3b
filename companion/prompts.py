"""The prompt text of ``config/prompts.toml``, loaded as data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from companion.config import read_toml
from companion.errors import ConfigError
from companion.paths import package_data
from companion.persona import fill
from companion.prompt import PromptTemplates


@dataclass(frozen=True, slots=True)
class Prompts:
    """Raw templates (with ``{{char}}``/``{{user}}`` still in them)."""

    context_header: str
    memories: str
    clock: str
    truncation_marker: str
    truncation_note: str
    greeting_returning: str
    greeting_prefill: str
    memory_question: str
    memory_prefill: str
    memory_recap: str
    examples_start: str
    examples_skipped: str
    plans: dict[str, str]
    #: Said instead of a reply that failed the guard every time (see
    #: :attr:`companion.guard.Context.instead`).
    guard_instead: tuple[str, ...] = ()
    #: The same, to a message that greets her.
    guard_instead_hello: tuple[str, ...] = ()

    def templates(self, *, char: str, user: str) -> PromptTemplates:
        """The templates for :func:`~companion.prompt.build_prompt`, names filled in."""
        return PromptTemplates(
            context_header=fill(self.context_header, char=char, user=user),
            memories=fill(self.memories, char=char, user=user),
            clock=self.clock,
            truncation_marker=self.truncation_marker,
            truncation_note=self.truncation_note,
            examples_start=fill(self.examples_start, char=char, user=user),
            examples_skipped=self.examples_skipped,
        )


#: The entries of ``[plans]`` (see :class:`companion.agenda.intake.Templates`).
PLAN_KEYS = ("reminder_note", "plan_note", "reminder_prefill", "plan_prefill",
             "reminder_confirmation", "plan_confirmation", "question_again",
             "agenda_intro", "agenda_intro_span", "agenda_empty", "agenda_empty_span",
             "agenda_more")


def _get(data: dict[str, Any], section: str, key: str, source: str) -> str:
    value = data.get(section, {}).get(key)
    if not isinstance(value, str):
        raise ConfigError(f"missing text [{section}].{key}", path=source)
    return value


def load_prompts() -> Prompts:
    source = "config/prompts.toml"
    data = read_toml(package_data("config", "prompts.toml").read_text(encoding="utf-8"), source)
    return Prompts(
        context_header=_get(data, "context", "header", source),
        memories=_get(data, "context", "memories", source),
        clock=_get(data, "context", "clock", source),
        truncation_marker=_get(data, "truncation", "marker", source),
        truncation_note=_get(data, "truncation", "note", source),
        greeting_returning=_get(data, "greeting", "returning", source),
        greeting_prefill=_get(data, "greeting", "returning_prefill", source),
        memory_question=_get(data, "memory", "question", source),
        memory_prefill=_get(data, "memory", "answer_prefill", source),
        memory_recap=_get(data, "memory", "recap", source),
        examples_start=_get(data, "examples", "chat_start", source),
        examples_skipped=_get(data, "examples", "skipped", source),
        plans={key: _get(data, "plans", key, source) for key in PLAN_KEYS},
        guard_instead=_lines(data, "guard", "instead", source),
        guard_instead_hello=_lines(data, "guard", "instead_hello", source),
    )


def _lines(data: dict[str, Any], section: str, key: str, source: str) -> tuple[str, ...]:
    value = data.get(section, {}).get(key)
    if not isinstance(value, list) or not value or not all(
        isinstance(x, str) and x.strip() for x in value
    ):
        raise ConfigError(f"[{section}].{key} must be a list of texts", path=source)
    return tuple(value)
