"""One exception tree for everything ``companion`` raises on purpose.

    CompanionError                 base: catch this at the boundary of a program
    ├── ConfigError                a config or persona file is unreadable or invalid
    │   └── PersonaError           a persona file or character card is invalid
    ├── InputError                 a message the companion cannot take (e.g. empty)
    ├── ModelError                 the language model cannot be found, fetched or run
    │   └── ModelNotFoundError     no model matches the name: says what was tried
    ├── StoreError                 the SQLite store cannot be used
    │   ├── StoreLockedError       another process holds the database
    │   ├── StoreCorruptError      the file is not a usable database (never overwritten)
    │   └── StoreKeyError          an encrypted store's key is wrong or missing (file untouched)
    └── AudioError                 no audio device, or audio I/O failed

Every message is one line a user can act on. Library errors are translated at
the boundary with ``raise ... from``, so the cause stays in ``__cause__``.
"""

from __future__ import annotations

from pathlib import Path


class CompanionError(Exception):
    """Base class of every error ``companion`` raises on purpose."""


class ConfigError(CompanionError):
    """A configuration file is missing, unreadable, or invalid.

    ``path`` and ``line`` locate the problem when known.
    """

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        self.problem = message
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(f"{where}{message}")


class PersonaError(ConfigError):
    """A persona file or character card is invalid."""


class InputError(CompanionError):
    """A user message that cannot be taken (empty, whitespace only, ...)."""


class ModelError(CompanionError):
    """The language model cannot be loaded, fetched, or run."""


class ModelNotFoundError(ModelError):
    """No model matches a name; the message lists what was tried and what exists."""

    def __init__(self, name: str, tried: list[str], available: list[str]):
        self.name = name
        self.tried = tried
        self.available = available
        msg = f"model {name!r} not found (tried: {'; '.join(tried) or 'nothing'})"
        if available:
            msg += f"; available: {', '.join(available)}"
        super().__init__(msg)


class StoreError(CompanionError):
    """The conversation store cannot be used."""


class StoreLockedError(StoreError):
    """Another process holds a lock on the database."""


class StoreCorruptError(StoreError):
    """The database file is damaged or not a database; it is left untouched."""


class StoreKeyError(StoreError):
    """An encrypted store cannot be opened: wrong passphrase, or no key; the file is untouched."""


class AudioError(CompanionError):
    """No audio device is available, or audio input/output failed."""
