"""Where the companion keeps things on disk.

- data directory (``COMPANION_HOME``, else the platform's user data directory):
  the SQLite store, user personas, user config, chat history;
- model cache (``COMPANION_MODELS``, else the platform's user cache directory):
  downloaded and converted model weights, shared by every data directory;
- package data (read-only): bundled personas, prompts, the model registry.
"""

from __future__ import annotations

import os
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

APP = "companion"


def data_dir() -> Path:
    """The user's data directory (not created here)."""
    env = os.environ.get("COMPANION_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP, appauthor=False))


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
