"""Fakes for tests, including the tests of programs that embed ``companion``.

    from companion.testing import FakeLLM, open_test_companion

    def test_my_bot(tmp_path):
        llm = FakeLLM(["Hello!"])
        c = open_test_companion(tmp_path, llm=llm, user="theo")
        assert c.say("hi").text() == "Hello!"
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from companion.dialog import Companion
from companion.llm.fake import FakeLLM


class FakeClock:
    """A clock that only moves when told: ``clock.advance(days=1)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 24, 18, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def open_test_companion(
    home: Path,
    *,
    llm: FakeLLM | None = None,
    user: str = "tester",
    clock: Callable[[], datetime] | None = None,
    **settings: Any,
) -> Companion:
    """A :class:`Companion` on a fake model, storing under ``home``."""
    return Companion.open(
        user=user,
        model=llm if llm is not None else FakeLLM(),
        home=home,
        clock=clock or FakeClock(),
        **settings,
    )


__all__ = ["FakeClock", "FakeLLM", "open_test_companion"]
