"""Persona text made ready for a prompt: placeholders filled, parts combined.

Placeholders follow SillyTavern: ``{{char}}`` / ``<BOT>`` is the persona's name,
``{{user}}`` / ``<USER>`` the user's (any letter case). When a persona has no
``system_prompt`` a default one is used, and, as SillyTavern does, the
description, personality and scenario follow it.
"""

from __future__ import annotations

import re

from companion.persona.model import Persona
from companion.types import Role

# The user's name when it is not known yet (SillyTavern's default).
DEFAULT_USER_NAME = "User"
# Used when a persona has no system prompt, and for ``{{original}}`` in one.
DEFAULT_SYSTEM_PROMPT = (
    "You are {{char}}, talking with {{user}}. Stay in character: reply only as {{char}}, "
    "in a few natural sentences."
)

_PLACEHOLDER = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(bot|user)>", re.IGNORECASE)
_ORIGINAL = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)
_START = re.compile(r"<start>", re.IGNORECASE)


def fill(template: str, *, char: str, user: str) -> str:
    """``template`` with ``{{char}}``/``<BOT>`` and ``{{user}}``/``<USER>`` replaced.

    One pass: a name that itself contains a placeholder is not expanded again.
    """

    def name(match: re.Match[str]) -> str:
        which = (match.group(1) or match.group(2)).lower()
        return char if which in ("char", "bot") else user

    return _PLACEHOLDER.sub(name, template)


def system_text(persona: Persona, user_name: str | None = None) -> str:
    """The persona's part of the system message, placeholders filled."""
    prompt = persona.system_prompt.strip()
    if prompt:
        prompt = _ORIGINAL.sub(lambda _m: DEFAULT_SYSTEM_PROMPT, prompt)
    else:
        prompt = DEFAULT_SYSTEM_PROMPT
    parts = [prompt, persona.description.strip()]
    if persona.personality.strip():
        parts.append(f"{{{{char}}}}'s personality: {persona.personality.strip()}")
    if persona.scenario.strip():
        parts.append(f"Scenario: {persona.scenario.strip()}")
    text = "\n\n".join(part for part in parts if part)
    return fill(text, char=persona.name, user=_user(user_name))


def post_history_text(persona: Persona, user_name: str | None = None) -> str:
    """The instruction to place after the chat history ("" when the persona has none)."""
    return fill(persona.post_history_instructions.strip(), char=persona.name, user=_user(user_name))


def greeting(persona: Persona, user_name: str | None = None, *, index: int = 0) -> str:
    """The opening message: ``first_mes`` (index 0) or an alternate greeting (1, 2, ...).

    An index past the end wraps around, so a caller can rotate greetings freely.
    """
    options = [g for g in (persona.first_mes, *persona.alternate_greetings) if g.strip()]
    if not options:
        return ""
    return fill(options[index % len(options)].strip(), char=persona.name, user=_user(user_name))


def examples(persona: Persona, user_name: str | None = None) -> list[tuple[Role, str]]:
    """The example dialogue as (role, text) pairs, all ``<START>`` blocks in order.

    A line starting ``{{user}}:`` (or ``<USER>:``, or the user's name) opens a user
    message; ``{{char}}:`` (or ``<BOT>:``, or the persona's name) an assistant one.
    Other lines continue the message before them; text before the first speaker of
    a block is dropped.
    """
    user = _user(user_name)
    speaker = re.compile(
        r"^\s*(?:(?P<user>\{\{\s*user\s*\}\}|<user>"
        + (f"|{re.escape(user)}" if user else "")
        + r")|(?P<char>\{\{\s*char\s*\}\}|<bot>|"
        + re.escape(persona.name)
        + r"))\s*:\s?(?P<text>.*)$",
        re.IGNORECASE,
    )
    pairs: list[tuple[Role, str]] = []
    for block in _START.split(persona.mes_example.replace("\r\n", "\n")):
        role: Role | None = None
        lines: list[str] = []
        for line in block.split("\n"):
            found = speaker.match(line)
            if found:
                _flush(pairs, role, lines, persona.name, user)
                role = "user" if found.group("user") is not None else "assistant"
                lines = [found.group("text")]
            elif role is not None:
                lines.append(line)
        _flush(pairs, role, lines, persona.name, user)
    return pairs


def _flush(
    pairs: list[tuple[Role, str]], role: Role | None, lines: list[str], char: str, user: str
) -> None:
    text = "\n".join(lines).strip()
    if role is not None and text:
        pairs.append((role, fill(text, char=char, user=user)))


def _user(user_name: str | None) -> str:
    return user_name.strip() if user_name and user_name.strip() else DEFAULT_USER_NAME
