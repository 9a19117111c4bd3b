"""The real test model, SmolLM2-135M-Instruct, on the transformers path through
:func:`load_llm` (``engine="transformers"``: its GGUF dequantized in memory). Greedy only.

The GGUF (98 MB) is fetched once into ``COMPANION_MODELS`` if need be; the model
cache the test loads from holds only a link to it, and nothing more afterwards.
Run with ``pytest -m real_model``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gguf_files import smol_gguf

from companion.llm.loader import load_llm
from companion.types import GenerationParams, Message

pytestmark = pytest.mark.real_model

MODEL = "smollm2-135m-instruct"
GREEDY = GenerationParams(max_tokens=24, temperature=0.0)
PERSONA = Message("system", "You are Samantha, a warm and curious companion. Reply briefly.")
HELLO = [PERSONA, Message("user", "Hi, I'm Theo. I just moved to Boston for a new job as a nurse.")]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[str], Path]:
    """The model, the progress lines of its loading, and the model cache it came from."""
    pytest.importorskip("torch")
    gguf = smol_gguf()
    if not gguf.is_file():
        pytest.skip(f"{gguf} is not downloaded")
    cache = tmp_path_factory.mktemp("models")
    (cache / "gguf").mkdir()
    (cache / "gguf" / gguf.name).symlink_to(gguf)
    lines: list[str] = []
    llm = load_llm(MODEL, threads=2, progress=lines.append, cache=cache, engine="transformers")
    return llm, lines, cache


@pytest.fixture(scope="module")
def llm(loaded: tuple[object, list[str], Path]) -> object:
    return loaded[0]


def test_the_gguf_is_read_in_memory_and_nothing_is_written(
    loaded: tuple[object, list[str], Path],
) -> None:
    _, lines, cache = loaded
    files = [p.relative_to(cache).as_posix() for p in sorted(cache.rglob("*"))]
    assert files == ["gguf", f"gguf/{smol_gguf().name}"]
    slow = [line for line in lines if "dequantizes the GGUF in memory" in line]
    assert len(slow) == 1 and "slow" in slow[0]


@pytest.fixture(scope="module")
def hello_reply(llm) -> str:  # type: ignore[no-untyped-def]
    """The greedy reply to HELLO, computed once."""
    return _reply(llm, HELLO)


def _reply(llm: object, messages: list[Message], params: GenerationParams = GREEDY) -> str:
    return "".join(llm.stream(messages, params))  # type: ignore[attr-defined]


def test_greedy_reply_is_english_from_the_chat_template(llm, hello_reply: str) -> None:  # type: ignore[no-untyped-def]
    assert llm.name == MODEL
    assert llm.context_length == 8192
    prompt = llm.render_prompt(HELLO)
    assert prompt.startswith("<|im_start|>system\nYou are Samantha")
    assert prompt.endswith("<|im_start|>assistant\n")
    words = re.findall(r"[A-Za-z']+", hello_reply)
    assert len(words) >= 3, hello_reply
    assert "<|im_" not in hello_reply
    assert llm.count_tokens("Hello there") == 2


def test_stop_sequence_is_honoured(llm, hello_reply: str) -> None:  # type: ignore[no-untyped-def]
    full = hello_reply
    words = full.split()
    stop = words[len(words) // 2]
    cut = _reply(llm, HELLO, GenerationParams(max_tokens=24, temperature=0.0, stop=(stop,)))
    assert cut == full[: full.index(stop)]
    assert llm.last_stats.stop_reason == "stop"


def test_prefix_reuse_matches_a_cold_run(llm, hello_reply: str) -> None:  # type: ignore[no-untyped-def]
    later = [
        *HELLO,
        Message("assistant", hello_reply),
        Message("user", "What do you remember about me?"),
    ]
    warm = _reply(llm, later)
    assert llm.last_stats.reused_tokens > llm.last_stats.prompt_tokens // 2
    llm.reset()
    cold = _reply(llm, later)
    assert llm.last_stats.reused_tokens == 0
    assert warm == cold


def test_cancel_mid_stream_then_the_next_call_works(llm, hello_reply: str) -> None:  # type: ignore[no-untyped-def]
    expected = hello_reply
    reply = llm.stream(HELLO, GREEDY)
    first_chunk = next(reply)
    reply.close()
    assert llm.last_stats.stop_reason == "cancelled"
    assert expected.startswith(first_chunk)
    assert _reply(llm, HELLO) == expected


def test_window_moving_on_keeps_the_cache_by_shifting_it(llm) -> None:  # type: ignore[no-untyped-def]
    import torch

    facts = [
        ("I grew up by the sea in Portugal.", "The sea! That sounds lovely."),
        ("My sister Ana is a pilot.", "A pilot, how exciting."),
        ("I play the cello on weekends.", "I'd love to hear you play."),
        ("My cat is called Miso.", "Miso is a perfect name."),
        ("I work night shifts at the hospital.", "Night shifts must be tiring."),
    ]
    history = [m for u, a in facts for m in (Message("user", u), Message("assistant", a))]
    question = Message("user", "What instrument do I play?")
    _reply(llm, [PERSONA, *history, question])
    # the window moves on: the first two exchanges are dropped
    moved = [PERSONA, *history[4:], question]
    warm = _reply(llm, moved)
    stats = llm.last_stats
    assert stats.reused_tokens >= stats.prompt_tokens - 12, stats  # only the tail is prefilled
    assert re.search(r"[A-Za-z]{2,}", warm)
    # The shifted cache predicts (almost) what a cold prefill of the moved window does.
    ids = llm.prompt_ids(moved)
    with torch.inference_mode():
        llm.reset()
        llm._new_cache()
        llm._forward(llm.prompt_ids([PERSONA, *history, question]))
        keep = 1
        while llm._cache_ids[keep] == ids[keep]:
            keep += 1
        shifted = llm._shift(ids, keep)
        assert shifted > 50
        warm_logits = llm._forward(ids[keep + shifted :])
        llm.reset()
        llm._new_cache()
        cold_logits = llm._forward(ids)
    p, q = cold_logits.softmax(-1), warm_logits.softmax(-1)
    kl = float((p * (p.log() - q.log())).sum())
    assert kl < 0.1, kl  # measured 0.013
    assert int(warm_logits.argmax()) == int(cold_logits.argmax())
    llm.reset()
