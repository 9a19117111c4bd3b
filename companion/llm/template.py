"""Rendering a conversation with a model's own chat template, shared by the local backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from companion.errors import ModelError
from companion.types import Message

Renderer = Callable[[list[dict[str, str]]], str]


def render_chat(render: Renderer, messages: Sequence[Message], name: str) -> str:
    """``render`` (a chat template with the generation prompt) applied to ``messages``.

    Some templates refuse system messages (or any after the first): then each is
    folded into the user message that follows it. A template that still fails
    raises :class:`ModelError`.
    """
    from jinja2 import TemplateError

    turns = [{"role": m.role, "content": m.content} for m in messages]
    try:
        return render(turns)
    except TemplateError as exc:
        try:
            return render(fold_system_messages(turns))
        except TemplateError as exc2:
            raise ModelError(f"{name}'s chat template failed: {exc2}") from exc


def fold_system_messages(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same conversation with no system role: each system message is put in
    front of the next user message (or becomes a user message of its own when
    none follows), for chat templates that only take user and assistant turns."""
    out: list[dict[str, str]] = []
    pending: list[str] = []
    for turn in turns:
        if turn["role"] == "system":
            pending.append(turn["content"])
            continue
        if turn["role"] == "user" and pending:
            turn = {"role": "user", "content": "\n\n".join([*pending, turn["content"]])}
            pending = []
        out.append(turn)
    if pending:
        out.append({"role": "user", "content": "\n\n".join(pending)})
    return out


def compile_chat_template(source: str) -> Any:
    """A chat template compiled as transformers compiles one (sandboxed, trimmed blocks)."""
    from jinja2 import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise ModelError(f"the model's chat template does not compile: {exc}") from exc
