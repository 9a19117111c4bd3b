"""Speculation on a real model: a prefill the user talks past changes nothing.

The voice loop reads the prompt for the transcript so far while the user is
silent (:class:`~companion.voice.speculate.Speculator`, the GGUF backend's
``prepare``). When the user goes on, the speculation is cancelled: the store
must hold nothing of it, and the replies that follow must be exactly the
greedy replies of a model that never saw it (the cache is cropped back to
what the real prompt shares with the speculative one).

SmolLM2-135M-Instruct on the GGUF engine; skipped when its GGUF is not
downloaded or the native kernels cannot be built.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf_files import smol_backend

from companion.dialog import Companion
from companion.llm.gguf.backend import GGUFBackend
from companion.llm.textstream import common_prefix_length
from companion.testing import FakeClock
from companion.voice.speculate import Speculator

pytestmark = pytest.mark.real_model

#: Two turns, each spoken with a pause after its first words (the partial transcript).
TURNS = [
    ("Hi, I'm Theo.", "Hi, I'm Theo. I just moved to Boston for a new job as a nurse."),
    ("My sister", "My sister lives in Lyon and we talk every Sunday."),
]


def _backend(**kwargs: object) -> GGUFBackend:
    return smol_backend(**kwargs)


def _open(llm: GGUFBackend, home: Path) -> Companion:
    # a clock that stands still: both conversations get the same prompts
    return Companion.open(user="theo", model=llm, home=home, clock=FakeClock(),
                          temperature=0.0, max_tokens=24)


def test_a_cancelled_speculation_leaves_the_store_and_the_replies_as_without_it(
    tmp_path: Path,
) -> None:
    # The replies from scratch: every prompt prefilled whole, nothing speculated.
    with _open(_backend(reuse_prefix=False), tmp_path / "plain") as plain:
        expected = [plain.say(full).text() for _partial, full in TURNS]
    assert all(reply.strip() for reply in expected)

    llm = _backend()
    with _open(llm, tmp_path / "spoken") as c:
        spec = Speculator(llm, c.prompt_for)
        for turn, (partial, full) in enumerate(TURNS):
            before = c.export()
            assert spec.start(partial)
            spec.wait()
            assert spec.error is None
            spec.cancel()  # the user went on
            assert spec.misses == turn + 1 and spec.hits == 0
            assert c.export() == before  # nothing of the partial turn was stored
            guessed = llm.prompt_ids(c.prompt_for(partial)[0])
            real = llm.prompt_ids(c.prompt_for(full)[0])
            reply = c.say(full).text()
            assert reply == expected[turn], (turn, reply, expected[turn])
            # the cache was cropped back to what the real prompt shares with the guess
            assert llm.last_stats is not None
            assert llm.last_stats.reused_tokens == common_prefix_length(guessed, real)
        turns = [(t.role, t.content) for t in c.history()]
    said = [("user", TURNS[0][1]), ("assistant", expected[0]),
            ("user", TURNS[1][1]), ("assistant", expected[1])]
    assert turns == said
