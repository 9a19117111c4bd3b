"""The library's notices on the terminal: one line each on standard error.

Core modules never print; they log to the ``companion`` logger (e.g. "dense
recall is off"). The commands show those records of level WARNING and above as
``companion: warning: ...``, through the same escape filter as everything else
printed. An exception logged with its traceback (the server's boundary) keeps it.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from companion.text import safe


class OneLine(logging.Formatter):
    """``companion: <level>: <message>`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"companion: {record.levelname.lower()}: {safe(record.getMessage(), one_line=True)}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Notices(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`show_notices` installs (found again by its type)."""


def show_notices(stream: TextIO | None = None) -> None:
    """Print the ``companion`` logger's warnings to ``stream`` (default: stderr).

    One handler at a time: a later call replaces it (its stream may be gone)."""
    logger = logging.getLogger("companion")
    remove_notices(logger)  # installed already: replaced, to write to this stream
    handler = _Notices(stream if stream is not None else sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(OneLine())
    logger.addHandler(handler)


def remove_notices(logger: logging.Logger) -> None:
    """Take :func:`show_notices`' handler off ``logger`` again."""
    for h in list(logger.handlers):
        if isinstance(h, _Notices):
            logger.removeHandler(h)
