"""Shared fixtures. Every test runs with its own data directory, never the user's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Model weights are a cache, not user data: keep them in the repository's
# (git-ignored) .test-models/ unless the caller points elsewhere, so the
# real-model tests download and convert once per checkout, not once per test.
os.environ.setdefault("COMPANION_MODELS", str(REPO / ".test-models"))


@pytest.fixture(autouse=True)
def companion_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point COMPANION_HOME (and HOME) at a fresh temporary directory."""
    home = tmp_path / "companion-home"
    monkeypatch.setenv("COMPANION_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # Fast tests use the shipped hashing embedder, not MiniLM.
    monkeypatch.setenv("COMPANION_EMBEDDER", "hash")
    yield home
    # A command run in-process installs its one-line notice handler on the
    # process-wide "companion" logger; it does not outlive the test.
    import logging

    from companion.cli.notices import remove_notices

    remove_notices(logging.getLogger("companion"))
