"""The lazy Reply: stream, collect, replay, interrupt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from companion.reply import Finished, Reply


def chunks(*parts: str) -> Iterator[str]:
    yield from parts


def test_lazy_until_used_then_replays() -> None:
    started: list[str] = []
    done: list[Finished] = []

    def gen() -> Iterator[str]:
        started.append("yes")
        yield from ("Hello", " there")

    r = Reply(gen(), done.append)
    assert not started and not r.done
    assert list(r) == ["Hello", " there"]
    assert r.text() == "Hello there" and list(r) == ["Hello", " there"]
    assert done == [Finished("Hello there", False)]


def test_prefix_comes_first() -> None:
    r = Reply(chunks(" you're back."), lambda f: f, prefix="Theo!")
    assert r.text() == "Theo! you're back."


def test_interrupt_keeps_what_was_said() -> None:
    done: list[Finished] = []
    r = Reply(chunks("one ", "two ", "three"), done.append)
    it = iter(r)
    assert next(it) == "one "
    r.interrupt()
    assert done == [Finished("one ", True)] and r.interrupted
    assert r.text() == "one "


def test_keyboard_interrupt_inside_generation_is_recorded() -> None:
    done: list[Finished] = []

    def gen() -> Iterator[str]:
        yield "partial"
        raise KeyboardInterrupt

    r = Reply(gen(), done.append)
    with pytest.raises(KeyboardInterrupt):
        r.text()
    assert done == [Finished("partial", True)]


def test_escape_sequences_from_the_model_are_stripped() -> None:
    r = Reply(chunks("a\x1b[2Jb", "\x07"), lambda f: f)
    assert r.text() == "ab"
