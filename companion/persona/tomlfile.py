"""Writing a persona as a TOML file (the format ``load_persona`` reads).

The writer is small and made for this one layout, so no TOML-writing dependency
is needed. Prose is written as multi-line literal strings (``'''``), which keep
the text exactly as typed; anything a literal string cannot hold falls back to
an escaped basic string.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path

from companion.errors import PersonaError
from companion.persona.model import Persona
from companion.persona.schema import LIST_FIELDS, TEXT_FIELDS, persona_to_mapping

# Single-line values shorter than this stay on the key's line.
_INLINE_MAX = 72

_BASIC_ESCAPES = {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}


# Characters written as \\uXXXX escapes: the controls a basic string may not hold
# (C0, DEL), and those it may but a terminal acts on or hides when the file is
# printed (C1 controls, 8-bit CSI included; bidirectional overrides and isolates).
_ESCAPED = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _basic(text: str) -> str:
    """A TOML basic string: every character it may not hold, or that is unsafe to print,
    is escaped."""
    out = []
    for ch in text:
        if ch in _BASIC_ESCAPES:
            out.append(_BASIC_ESCAPES[ch])
        elif _ESCAPED.match(ch):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _literal_ok(text: str) -> bool:
    """Whether a multi-line literal string reproduces ``text`` exactly (and prints safely)."""
    if "'''" in text or "\r" in text:
        return False
    return not any(_ESCAPED.match(ch) and ch not in "\n\t" for ch in text)


def _string(text: str) -> str:
    if "\n" not in text and len(text) <= _INLINE_MAX:
        return _basic(text)
    if _literal_ok(text):
        # The newline right after the opening quotes is dropped by TOML parsers;
        # a text ending in "'" or "''" may touch the closing quotes (TOML 1.0).
        return "'''\n" + text + "'''"
    return _basic(text)


def _float(value: float) -> str:
    text = repr(float(value))
    return text if any(c in text for c in ".en") else text + ".0"


def _number(value: float) -> str:
    return repr(value) if isinstance(value, int) else _float(value)


def persona_to_toml(persona: Persona) -> str:
    """The persona as the text of a TOML file that ``load_persona`` reads back equal."""
    data = persona_to_mapping(persona)
    lines = [
        "# Persona: " + "".join(ch if ch.isprintable() else "?" for ch in persona.name),
        "# Character Card V2 fields; {{char}} and {{user}} are replaced when the prompt is built.",
        "",
    ]
    for key in TEXT_FIELDS:
        value: str = data[key]
        if value or key == "name":
            lines.append(f"{key} = {_string(value)}")
    for key in LIST_FIELDS:
        items: list[str] = data[key]
        if not items:
            lines.append(f"{key} = []")
        elif sum(len(item) for item in items) <= _INLINE_MAX and all("\n" not in i for i in items):
            lines.append(f"{key} = [{', '.join(_basic(item) for item in items)}]")
        else:
            lines.append(f"{key} = [")
            lines.extend(f"    {_string(item)}," for item in items)
            lines.append("]")
    lines += [
        "",
        "# Mood the companion returns to when left alone: -1 .. +1.",
        "[baseline]",
        f"valence = {_float(persona.baseline.valence)}",
        f"arousal = {_float(persona.baseline.arousal)}",
        "",
        "# Text-to-speech: engine voice id (empty: the engine's default), words/min, 0..1.",
        "[voice]",
        f"voice = {_basic(persona.voice.voice)}",
        f"rate = {_number(data['voice']['rate'])}",
        f"volume = {_float(persona.voice.volume)}",
        "",
    ]
    if data.get("sampling"):
        lines += ["# Sampling for this persona; the user's own config beats it.", "[sampling]"]
        lines += [f"{key} = {_number(value)}" for key, value in data["sampling"].items()]
        lines.append("")
    return "\n".join(lines)


def save_persona_toml(persona: Persona, path: Path) -> Path:
    """Write the persona to ``path`` atomically (parent folders are created)."""
    path = Path(path)
    text = persona_to_toml(persona)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PersonaError(f"cannot write persona: {exc.strerror or exc}", path=path) from exc
    return path


def persona_slug(name: str) -> str:
    """A file-name-safe lower-case name: ``"Dr. Ada Lovelace"`` -> ``"dr-ada-lovelace"``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug or "persona"
