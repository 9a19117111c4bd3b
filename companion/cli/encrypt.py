"""``companion encrypt`` and ``companion decrypt``: the store, encrypted at rest or plain.

The store is the SQLite file in the data directory (messages, memories, persona
state). Encrypting it rewrites it with SQLCipher under a key from the OS keyring,
or under a passphrase (see :mod:`companion.memory.keys`); from then on every
command opens it with that key. Run with no chat, voice or server open on it.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_encrypt_parser(sub: Any) -> None:
    """Add the ``encrypt`` and ``decrypt`` commands to the top-level subparsers."""
    enc = sub.add_parser("encrypt", help="encrypt the store (messages and memories) at rest")
    enc.add_argument(
        "--passphrase",
        action="store_true",
        help="lock it with a passphrase (asked, or COMPANION_PASSPHRASE) even when an OS "
        "keyring is available",
    )
    sub.add_parser("decrypt", help="turn an encrypted store back into a plain SQLite file")


def run_encrypt(args: argparse.Namespace) -> int:
    from companion.errors import InputError
    from companion.memory import Store, crypto
    from companion.paths import data_dir

    path = (data_dir() / "companion.db").absolute()
    crypto.require()
    if args.command == "encrypt":
        if crypto.encryption(path) is not None:
            raise InputError(f"{path} is already encrypted (companion decrypt undoes it)")
        Store.open(path).close()  # create it, or check and migrate it, before converting
        key = crypto.encrypt(path, passphrase=args.passphrase)
        print(f"Encrypted {path}: {key.describe()}.")
        clear = [str(p) for p in (path.parent / "history", path.parent / "exports") if p.exists()]
        if clear:
            print(f"Note: {' and '.join(clear)} hold text in clear (lines you typed, exports); "
                  "delete them if they should not stay. The chat keeps no history file "
                  "while the store is encrypted.")
    else:
        crypto.decrypt(path)
        print(f"Decrypted {path}: it is a plain SQLite file again.")
    return 0
