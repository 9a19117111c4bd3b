"""The GGUF engine as a chat backend, on SmolLM2-135M-Instruct's GGUF (greedy only).

Skipped when the GGUF is not downloaded or the native kernels cannot be built.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from companion.errors import ModelError
from companion.llm.base import LLM
from companion.llm.gguf.backend import GGUFBackend, open_gguf_engine
from companion.llm.loader import load_llm
from companion.paths import models_dir
from companion.types import GenerationParams, Message
from tests.gguf_files import foreign_gguf, smol_backend, smol_gguf

GREEDY = GenerationParams(max_tokens=24, temperature=0.0)
PERSONA = Message("system", "You are Samantha, a warm and curious companion. Reply briefly.")
HELLO = [PERSONA, Message("user", "Hi, I'm Theo. I just moved to Boston for a new job as a nurse.")]
SMOL = smol_gguf()


def _open(**kwargs: object) -> GGUFBackend:
    return smol_backend(**kwargs)


@pytest.fixture(scope="module")
def llm() -> Iterator[GGUFBackend]:
    yield _open()


def test_it_is_an_llm_with_the_model_s_numbers(llm: GGUFBackend) -> None:
    assert isinstance(llm, LLM)
    assert llm.name == SMOL.stem
    assert llm.context_length == 4096  # the default, under SmolLM2's 8192
    assert llm.count_tokens("Hello there, Theo!") == len(llm.tokenizer.encode("Hello there, Theo!"))
    assert llm.count_tokens("") == 0
    prompt = llm.render_prompt(HELLO)
    assert prompt.startswith("<|im_start|>system\nYou are Samantha")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_greedy_reply_starts_as_llama_cpp_s(llm: GGUFBackend) -> None:
    llama_cpp_backend = pytest.importorskip("companion.llm.llamacpp_backend")
    pytest.importorskip("llama_cpp")
    theirs = llama_cpp_backend.LlamaCppLLM(SMOL, threads=2, context_length=1024)
    ours = "".join(llm.stream(HELLO, GREEDY))
    assert ours.strip()
    # The same blocks and the same numbers, up to llama.cpp's own prefill/decode
    # noise (SmolLM2 is sensitive to it; bench/gguf_agreement.py: 19 tokens agree
    # on average before a greedy reply first differs): the same first words.
    assert ours.split()[:4] == "".join(theirs.stream(HELLO, GREEDY)).split()[:4]
    assert llm.last_stats is not None and llm.last_stats.generated_tokens > 0


def test_the_next_turn_prefills_only_what_is_new(llm: GGUFBackend) -> None:
    fresh = _open(reuse_prefix=False)
    first = "".join(llm.stream(HELLO, GREEDY))
    turn2 = [*HELLO, Message("assistant", first), Message("user", "What should I see first?")]
    reply = "".join(llm.stream(turn2, GREEDY))
    stats = llm.last_stats
    assert stats is not None
    assert stats.reused_tokens >= len(llm.prompt_ids(HELLO)) - 1
    # the same numbers as a prefill from scratch: the same reply
    assert reply == "".join(fresh.stream(turn2, GREEDY))
    assert fresh.last_stats is not None and fresh.last_stats.reused_tokens == 0


def test_a_cancelled_reply_leaves_the_backend_usable(llm: GGUFBackend) -> None:
    chunks = llm.stream(HELLO, GenerationParams(max_tokens=64, temperature=0.0))
    next(chunks)
    chunks.close()
    assert llm.last_stats is not None and llm.last_stats.stop_reason == "cancelled"
    again = "".join(llm.stream(HELLO, GREEDY))
    llm.reset()
    assert again == "".join(llm.stream(HELLO, GREEDY))
    assert llm.last_stats is not None and llm.last_stats.reused_tokens == 0


def test_a_prompt_longer_than_the_context_is_refused() -> None:
    small = _open(context_length=16)
    with pytest.raises(ModelError, match="at most 16"):
        small.stream(HELLO, GREEDY)
    assert _open(context_length=100_000).context_length == 8192  # the model's own


def test_load_llm_runs_a_gguf_file_without_conversion(tmp_path: Path) -> None:
    if not SMOL.is_file():
        pytest.skip(f"{SMOL} is not downloaded")
    local = models_dir() / "local"
    before = set(local.iterdir()) if local.is_dir() else set()
    lines: list[str] = []
    try:
        llm = load_llm(str(SMOL), threads=2, progress=lines.append, engine="gguf")
    except ModelError as exc:
        if "kernels" in str(exc):
            pytest.skip(str(exc))
        raise
    assert isinstance(llm, GGUFBackend)
    assert lines == [f"loading {SMOL.stem}"]
    assert (set(local.iterdir()) if local.is_dir() else set()) == before  # nothing converted


def test_an_unsupported_gguf_falls_back_with_one_line(tmp_path: Path) -> None:
    path = foreign_gguf(tmp_path / "gemma.gguf")
    notices: list[str] = []
    assert open_gguf_engine(path, name="gemma", threads=1, notice=notices.append) is None
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "architecture 'gemma' is not supported" in notices[0]
    assert notices[0].endswith("using transformers instead")
    with pytest.raises(ModelError, match="gemma.gguf: architecture 'gemma'"):
        load_llm(str(path), engine="gguf")
    with pytest.raises(ModelError, match="no GGUF file at"):
        GGUFBackend(tmp_path / "missing.gguf")


def test_a_draft_of_the_same_vocabulary_keeps_the_greedy_reply(llm: GGUFBackend) -> None:
    """SmolLM2 drafting for itself: every draft token is taken, the reply is the same."""
    plain = "".join(llm.stream(HELLO, GREEDY))
    drafted = GGUFBackend(SMOL, threads=2, draft=_open())
    assert "".join(drafted.stream(HELLO, GREEDY)) == plain
    assert drafted.last_acceptance is not None and drafted.last_acceptance > 0.9


def test_a_draft_with_another_vocabulary_is_refused_in_one_line(tmp_path: Path) -> None:
    if not SMOL.is_file():
        pytest.skip("no SmolLM2 GGUF")
    from tests.gguf_files import gguf_file

    qwen = gguf_file("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf")
    if not qwen.is_file():
        pytest.skip("no Qwen 0.5B GGUF")
    with pytest.raises(ModelError, match="vocabularies differ"):
        GGUFBackend(qwen, threads=2, draft=_open())


def test_prepare_reads_the_prompt_ahead_and_the_reply_reuses_it() -> None:
    llm = _open()
    llm.prepare(HELLO, GREEDY)
    reply = "".join(llm.stream(HELLO, GREEDY))
    assert llm.last_stats is not None
    assert llm.last_stats.reused_tokens == len(llm.prompt_ids(HELLO)) - 1
    assert reply == "".join(_open(reuse_prefix=False).stream(HELLO, GREEDY))


def test_a_window_that_moves_on_keeps_the_cache_by_shifting_it() -> None:
    """The history's oldest exchange drops out of the prompt: the cached entries
    after it are moved back (keys rotated) instead of prefilled again, and the
    reply stays close to a cold run's (the shift is an approximation)."""
    llm = _open()
    turns = [PERSONA]
    for i, text in enumerate(["I grow tomatoes.", "I also keep bees.", "My sister is Maya.",
                              "She lives in Lyon.", "We talk every Sunday."]):
        turns += [Message("user", text), Message("assistant", f"Lovely, number {i}.")]
    llm.stream(turns + [Message("user", "Hi again.")], GREEDY).close()
    "".join(llm.stream(turns + [Message("user", "Hi again.")], GREEDY))
    moved = [PERSONA, *turns[3:], Message("user", "What do I grow?")]
    reply = "".join(llm.stream(moved, GREEDY))
    stats = llm.last_stats
    assert stats is not None
    # everything but the new message (and the cut's seam) came from the cache
    assert stats.reused_tokens > len(llm.prompt_ids(moved)) - 20
    assert reply.strip()
