"""Cleaning text that crosses the terminal: user input and model output.

Terminal escape sequences and control characters are never stored or echoed
raw: a pasted ``ESC]0;title BEL`` must not retitle the user's terminal, and a
model emitting ``ESC[2J`` must not clear it.
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


def clean_message(text: str) -> str:
    """The user's message as it will be stored and answered.

    Raises :class:`InputError` for a message with nothing in it (no model call
    is made for it) or one over :data:`MAX_MESSAGE_CHARS`.
    """
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"message too long: {len(text):,} characters (the limit is {MAX_MESSAGE_CHARS:,})"
        )
    cleaned = strip_controls(text).strip()
    if not cleaned:
        raise InputError("empty message: type something to say (or /help)")
    return cleaned
