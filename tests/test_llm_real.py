"""The real default model, SmolLM2-135M-Instruct, through :func:`load_llm`. Greedy only.

The first run fetches and converts the model into ``COMPANION_MODELS`` (about
100 MB and half a minute); later runs load the converted copy in about a second.
Run with ``pytest -m real_model``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from companion.llm.loader import load_llm
from companion.types import GenerationParams, Message

pytestmark = pytest.mark.real_model

MODEL = "smollm2-135m-instruct"
GREEDY = GenerationParams(max_tokens=24, temperature=0.0)
PERSONA = Message("system", "You are Samantha, a warm and curious companion. Reply briefly.")
HELLO = [PERSONA, Message("user", "Hi, I'm Theo. I just moved to Boston for a new job as a nurse.")]


@pytest.fixture(scope="module")
def llm() -> Iterator[object]:
    pytest.importorskip("torch")
    yield load_llm(MODEL, threads=2, progress=lambda _: None)


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
