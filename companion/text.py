"""Cleaning text that crosses the terminal: user input and model output.

Terminal escape sequences and control characters are never stored or echoed
raw: a pasted ``ESC]0;title BEL`` must not retitle the user's terminal, and a
model emitting ``ESC[2J`` must not clear it. :func:`safe` is the one filter for
everything printed that comes from a file, a card, the model or the user;
:func:`clean_message` is what a typed message becomes before it is stored.
"""

from __future__ import annotations

import re

from companion.errors import InputError

#: The longest message accepted at all (stored in full; the model sees what fits).
MAX_MESSAGE_CHARS = 1_000_000

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-byte escapes,
# and the 8-bit CSI/OSC introducers.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d).*?(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[PX^_].*?(?:\x1b\\|\x9c)"
    r"|\x1b[@-Z\\-_]?",
    re.DOTALL,
)
# C0 and C1 controls and DEL, except tab and newline.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """Remove escape sequences and control characters; keep tabs and newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


# Bidirectional overrides and isolates: they reorder what the terminal shows.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def safe(text: object, *, one_line: bool = False) -> str:
    """``text`` as it may be printed to a terminal: no escape sequence, no control
    character, no bidirectional override, no lone surrogate (which cannot be
    encoded). ``one_line`` also turns line breaks and tabs into spaces, for a name
    or an echoed word printed inside a line of ours."""
    cleaned = _BIDI.sub("", strip_controls(str(text)))
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    if one_line:
        cleaned = " ".join(cleaned.split("\n")).replace("\t", " ")
    return cleaned


#: The largest id SQLite stores (a signed 64-bit integer).
MAX_ID = 2**63 - 1


def parse_id(text: str) -> int | None:
    """The id a user typed (ASCII digits only), or None when ``text`` is not one.

    Raises :class:`InputError` for an id too large to exist (rather than letting
    SQLite overflow), so that it is answered in one line.
    """
    text = text.strip()
    if not text or not all("0" <= ch <= "9" for ch in text):
        return None
    value = int(text[:30]) if len(text) <= 30 else MAX_ID + 1
    if value > MAX_ID:
        raise InputError(f"no such id: {safe(text[:30], one_line=True)} is too large")
    return value


def clean_message(text: str) -> str:
    """The user's message as it will be stored and answered.

    Raises :class:`InputError` for a message with nothing in it (no model call
    is made for it), one over :data:`MAX_MESSAGE_CHARS`, or one that is not
    valid Unicode.
    """
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"message too long: {len(text):,} characters (the limit is {MAX_MESSAGE_CHARS:,})"
        )
    cleaned = strip_controls(text).strip()
    if not cleaned:
        raise InputError("empty message: type something to say (or /help)")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            "message holds text that is not valid Unicode (a lone surrogate): not sent"
        ) from exc
    return cleaned
