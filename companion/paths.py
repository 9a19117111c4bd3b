"""Where the companion keeps things on disk.

- data directory (``COMPANION_HOME``, else the platform's user data directory):
  the SQLite store, user personas, user config, chat history;
- model cache (``COMPANION_MODELS``, else the platform's user cache directory):
  downloaded model weights, shared by every data directory;
- package data (read-only): bundled personas, prompts, the model registry.

The data directory holds the user's conversations: it and every folder we
create in it are private (0700), whichever command creates them first.
"""

from __future__ import annotations

import os
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from companion.errors import ConfigError, InputError
from companion.text import safe

APP = "companion"


def data_dir() -> Path:
    """The user's data directory (not created here)."""
    env = os.environ.get("COMPANION_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP, appauthor=False))


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parent folders readable by the user only (0700).

    Folders that already exist are left as they are.
    """
    path = Path(path)
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)  # whatever the umask
    return path


def ensure_data_dir() -> Path:
    """The data directory, created private (0700) if it does not exist yet."""
    path = data_dir()
    try:
        return private_dir(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the data directory: {exc.strerror or exc}",
                          path=path) from exc


# A user id that names files (``exports/<user>-<time>.json``) and travels on
# the command line: letters, digits and ``_ . @ + -``, not starting with a dot
# or a dash (so never ``..`` or a path).
_USER_ID = re.compile(r"[^\W][\w.@+-]{0,63}")


def check_user_name(user: str) -> str:
    """``user`` if it is a safe user id; raises :class:`~companion.errors.InputError`."""
    if not user:
        raise InputError("--user must not be empty (leave it out to use your login name)")
    if not _USER_ID.fullmatch(user) or ".." in user:
        raise InputError(
            f"user id {safe(user, one_line=True)!r} is not allowed: use letters, digits and "
            "_ . @ + - (at most 64, not starting with . or -)"
        )
    return user


def models_dir() -> Path:
    """The model cache directory (not created here)."""
    env = os.environ.get("COMPANION_MODELS")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP, appauthor=False)) / "models"


def package_data(*parts: str) -> Traversable:
    """A file or folder of the package's data (``config/`` and ``models/``)."""
    node = files("companion").joinpath("data")
    for part in parts:
        node = node.joinpath(part)
    return node
