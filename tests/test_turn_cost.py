"""What one turn costs the memory: the facts are read once for the user's name and the
user's message is embedded once (for recall and for storing it)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from companion.memory import LongTermMemory
from companion.memory.embed import HashEmbedder, Vectors
from companion.testing import FakeLLM, open_test_companion
from companion.types import MemoryItem


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> Vectors:
        self.texts.extend(texts)
        return super().embed(texts)


def test_a_turn_reads_the_facts_once_and_embeds_the_message_once(tmp_path: Path) -> None:
    replies = ["Nice to meet you, Theo.", "A cello! How lovely.", "Tell me more."]
    companion = open_test_companion(tmp_path, llm=FakeLLM(replies))
    memory = companion.memory
    assert isinstance(memory, LongTermMemory)
    companion.say("My name is Theo.").text()
    embedder = CountingEmbedder()
    memory.embedder = embedder
    reads: list[str] = []
    items = memory.items

    def counted_items(user_id: str) -> list[MemoryItem]:
        reads.append(user_id)
        return items(user_id)

    memory.items = counted_items  # type: ignore[method-assign]
    reply = companion.say("I play the cello in a quartet.")
    assert reply.text() == "A cello! How lovely."
    assert len(reads) == 1
    assert embedder.texts.count("I play the cello in a quartet.") == 1
    # The name is still the one she was told, in the prompt and the stop list.
    assert companion.user_name() == "Theo"
    companion.close()


def test_the_cached_query_vector_is_the_same_as_a_fresh_one(tmp_path: Path) -> None:
    from companion.memory.dense import DenseIndex
    from companion.memory.store import Store

    store = Store.open(tmp_path / "db.sqlite")
    dense = DenseIndex(store, CountingEmbedder())
    first = dense.embed(["I love jazz."])
    again = dense.embed(["I love jazz.", "User likes jazz."])
    fresh = HashEmbedder().embed(["I love jazz.", "User likes jazz."])
    assert first is not None and again is not None
    assert (again == fresh).all() and (first[0] == fresh[0]).all()
    assert isinstance(dense.embedder, CountingEmbedder)
    assert dense.embedder.texts == ["I love jazz.", "User likes jazz."]
    store.close()


def test_a_failing_embedder_is_one_warning_on_the_companion_logger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from companion.errors import ConfigError

    class Broken(HashEmbedder):
        def embed(self, texts: list[str]) -> Vectors:
            raise ConfigError("the model file is damaged")

    companion = open_test_companion(tmp_path, llm=FakeLLM(["Hi."] * 3))
    assert isinstance(companion.memory, LongTermMemory)
    companion.memory.embedder = Broken()
    with caplog.at_level(logging.WARNING, logger="companion"):
        companion.say("I love jazz.").text()
        companion.say("I love blues too.").text()
    warnings = [r for r in caplog.records if r.name.startswith("companion")]
    assert len(warnings) == 1 and "dense recall is off" in warnings[0].getMessage()
    assert companion.memory.embedder is None  # keywords from now on
    assert capsys.readouterr().err == ""  # a library does not print
    companion.close()
