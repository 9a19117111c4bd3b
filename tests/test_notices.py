"""The library logs its notices; the CLI shows each as one filtered line on stderr."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from companion.cli.notices import show_notices


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    logger = logging.getLogger("companion")
    before = list(logger.handlers)
    out = io.StringIO()
    show_notices(out)
    show_notices(out)  # installed once
    yield out
    logger.handlers = before


def test_a_warning_is_one_line_without_escapes(stream: io.StringIO) -> None:
    log = logging.getLogger("companion.memory")
    log.warning("dense recall is off (%s); using keywords only", "bad\x1b]0;pwned\x07\nfile")
    log.info("not shown")
    assert stream.getvalue() == (
        "companion: warning: dense recall is off (bad file); using keywords only\n"
    )


def test_an_embedder_that_fails_in_a_chat_is_one_line(
    stream: io.StringIO, tmp_path: Path
) -> None:
    from companion.errors import ConfigError
    from companion.memory import LongTermMemory
    from companion.memory.embed import HashEmbedder, Vectors
    from companion.testing import FakeLLM, open_test_companion

    class Broken(HashEmbedder):
        def embed(self, texts: list[str]) -> Vectors:
            raise ConfigError("dense recall needs sentence-transformers")

    companion = open_test_companion(tmp_path, llm=FakeLLM(["Hi."] * 2))
    assert isinstance(companion.memory, LongTermMemory)
    companion.memory.embedder = Broken()
    companion.say("I love jazz.").text()
    companion.say("And blues.").text()
    companion.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "companion: warning: dense recall is off (dense recall needs sentence-transformers); "
        "using keywords only"
    ]
