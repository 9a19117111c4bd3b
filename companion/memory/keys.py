"""Where the key of an encrypted store comes from: the OS keyring, or a passphrase.

Two kinds of key, recorded (never the key itself) in the store's marker file:

- ``keyring``: a random 256-bit key kept in the OS keyring (``keyring`` package)
  under the service ``companion``; chosen by ``companion encrypt`` when a usable
  keyring backend exists, unless a passphrase is asked for.
- ``passphrase``: taken from ``COMPANION_PASSPHRASE`` when set, else typed once
  per process (``getpass``) and kept in memory until the process ends. SQLCipher
  turns it into the key with PBKDF2-HMAC-SHA512 (256,000 rounds, the file's salt);
  that is done here once per process, so opening the store again (the server
  opens it once per user) costs nothing.

Every key handed to SQLCipher is a raw key (``x'...'``), so it never runs the
key derivation itself. The file stays readable by the stock ``sqlcipher`` tool
with ``PRAGMA key = 'passphrase'``.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import re
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.errors import InputError, StoreError, StoreKeyError

#: The environment variable that gives the passphrase (no prompt then).
ENV = "COMPANION_PASSPHRASE"
#: The keyring service the random keys are stored under.
SERVICE = "companion"
#: SQLCipher 4's defaults: PBKDF2-HMAC-SHA512, this many rounds, a 16-byte salt
#: at the start of the file, a 256-bit key.
KDF_ROUNDS = 256_000
SALT_BYTES = 16

_HEX_KEY = re.compile(r"[0-9a-f]{64}")
_phrase: str | None = None  # typed once, kept for the life of the process
_derived: dict[tuple[str, bytes], str] = {}  # (passphrase, salt) -> raw key


@dataclass(frozen=True)
class NewKey:
    """A key made by ``companion encrypt``: what the marker records, and the key."""

    info: dict[str, str]  # {"key": "keyring", "id": ...} or {"key": "passphrase"}
    sql: str  # the key as SQLCipher takes it (a raw x'...' key or a passphrase)

    def describe(self) -> str:
        if self.info["key"] == "keyring":
            return f"the key is in the OS keyring ({_keyring_name()})"
        return "the key is your passphrase: without it nothing stored can be read"


def keyring_usable() -> bool:
    """Whether the ``keyring`` package is installed and has a real backend."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False
    backend = keyring.get_keyring()
    return not isinstance(backend, fail.Keyring) and float(backend.priority) > 0


def new_key(*, passphrase: bool = False) -> NewKey:
    """A key for a store being encrypted: a random one kept in the OS keyring when
    one is usable (and neither ``passphrase`` nor ``COMPANION_PASSPHRASE`` says
    otherwise), else the passphrase (asked twice when typed)."""
    if not passphrase and not os.environ.get(ENV) and keyring_usable():
        key_id = secrets.token_hex(8)
        raw = secrets.token_hex(32)
        with _keyring_errors():
            _keyring().set_password(SERVICE, _username(key_id), raw)
        return NewKey({"key": "keyring", "id": key_id}, f"x'{raw}'")
    phrase = os.environ.get(ENV) or _typed("New passphrase for the store: ", confirm=True)
    return NewKey({"key": "passphrase"}, phrase)


def drop_key(info: dict[str, str]) -> None:
    """Remove a keyring key that no longer locks anything (best effort)."""
    if info.get("key") != "keyring":
        return
    with contextlib.suppress(ImportError, StoreKeyError), _keyring_errors():
        _keyring().delete_password(SERVICE, _username(info.get("id", "")))


def store_key(path: Path, info: dict[str, str]) -> str:
    """The raw key that opens the encrypted store at ``path`` (``info`` from its marker)."""
    kind = info.get("key")
    if kind == "keyring":
        with _keyring_errors():
            raw = _keyring().get_password(SERVICE, _username(info.get("id", "")))
        if raw is None or not _HEX_KEY.fullmatch(raw):
            raise StoreKeyError(
                f"the key of the encrypted store {path} is not in the OS keyring "
                f"({_keyring_name()}); it was left untouched"
            )
        return f"x'{raw}'"
    if kind != "passphrase":
        raise StoreKeyError(f"{path}: unknown kind of key {kind!r} in its marker file")
    try:
        with path.open("rb") as f:
            salt = f.read(SALT_BYTES)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    phrase = os.environ.get(ENV) or _phrase or _typed(f"Passphrase for {path}: ")
    cached = _derived.get((phrase, salt))
    if cached is None:
        key = hashlib.pbkdf2_hmac("sha512", phrase.encode("utf-8"), salt, KDF_ROUNDS, 32)
        cached = f"x'{key.hex()}{salt.hex()}'"
    return cached


def remember(path: Path, info: dict[str, str], sql_key: str) -> None:
    """Keep a passphrase that opened ``path`` (and its derived key) for this process."""
    if info.get("key") != "passphrase":
        return
    phrase = os.environ.get(ENV) or _phrase
    if phrase is not None:
        with path.open("rb") as f:
            _derived[(phrase, f.read(SALT_BYTES))] = sql_key


def forget_typed() -> None:
    """Drop a typed passphrase that turned out wrong, so the next open asks again."""
    global _phrase
    _phrase = None
    _derived.clear()


def _typed(prompt: str, *, confirm: bool = False) -> str:
    """Ask for the passphrase on the terminal (never read from standard input)."""
    global _phrase
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            phrase = getpass.getpass(prompt)
            if confirm and getpass.getpass("Again: ") != phrase:
                raise InputError("the two passphrases differ; nothing was changed")
        except getpass.GetPassWarning as exc:
            raise StoreKeyError(
                f"the store is encrypted: set {ENV}, or run from a terminal to type the passphrase"
            ) from exc
        except EOFError as exc:
            raise StoreKeyError("no passphrase given") from exc
    if not phrase:
        raise InputError("the passphrase must not be empty")
    _phrase = phrase
    return phrase


def _username(key_id: str) -> str:
    return f"store-key-{key_id}"


def _keyring() -> Any:
    import keyring

    return keyring


def _keyring_name() -> str:
    backend = _keyring().get_keyring()
    return str(getattr(backend, "name", type(backend).__name__))


@contextmanager
def _keyring_errors() -> Iterator[None]:
    """Translate keyring failures (locked, no D-Bus, refused) into :class:`StoreKeyError`."""
    from keyring.errors import KeyringError

    try:
        yield
    except KeyringError as exc:
        raise StoreKeyError(f"the OS keyring failed: {exc}") from exc
