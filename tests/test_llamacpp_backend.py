"""The llama.cpp backend on SmolLM2-135M-Instruct's GGUF, through ``load_llm("llamacpp:...")``.

Skipped when llama-cpp-python is not installed (``pip install 'companion[llamacpp]'``),
except the first test, which checks the install hint without it. The GGUF is the
one the registry fetches into ``COMPANION_MODELS`` (no conversion is needed).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from companion.errors import ModelError, ModelNotFoundError
from companion.llm.loader import load_llm
from companion.types import GenerationParams, Message

MODEL = "smollm2-135m-instruct"
GREEDY = GenerationParams(max_tokens=24, temperature=0.0)
PERSONA = Message("system", "You are Samantha, a warm and curious companion. Reply briefly.")
HELLO = [PERSONA, Message("user", "Hi, I'm Theo. I just moved to Boston for a new job as a nurse.")]


def test_without_llama_cpp_the_loader_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # `import llama_cpp` now fails
    with pytest.raises(ModelError, match=r"pip install 'companion\[llamacpp\]'") as caught:
        load_llm(f"llamacpp:{MODEL}")
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def llm() -> Iterator[Any]:
    pytest.importorskip("llama_cpp")
    yield load_llm(f"llamacpp:{MODEL}", threads=2, progress=lambda _: None)


@pytest.fixture(scope="module")
def hello_reply(llm: Any) -> str:
    """The greedy reply to HELLO, computed once."""
    return _reply(llm, HELLO)


def _reply(llm: Any, messages: list[Message], params: GenerationParams = GREEDY) -> str:
    return "".join(llm.stream(messages, params))


@pytest.mark.real_model
def test_the_loader_resolves_a_registry_name_to_its_gguf(llm: Any) -> None:
    from companion.llm.llamacpp_backend import LlamaCppLLM

    assert isinstance(llm, LlamaCppLLM)
    assert llm.name == MODEL
    assert llm.path.suffix == ".gguf"
    assert llm.context_length == 4096
    assert llm.count_tokens("Hello there") == 2


@pytest.mark.real_model
def test_an_unknown_target_lists_the_registry(llm: Any) -> None:
    with pytest.raises(ModelNotFoundError, match=MODEL):
        load_llm("llamacpp:no-such-model")


@pytest.mark.real_model
def test_greedy_reply_is_english_and_deterministic(llm: Any, hello_reply: str) -> None:
    prompt = llm.render_prompt(HELLO)
    assert prompt.startswith("<|im_start|>system\nYou are Samantha")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert len(re.findall(r"[A-Za-z']+", hello_reply)) >= 3, hello_reply
    assert "<|im_" not in hello_reply
    llm.reset()
    assert _reply(llm, HELLO) == hello_reply


@pytest.mark.real_model
def test_max_tokens_ends_the_reply(llm: Any) -> None:
    _reply(llm, HELLO, GenerationParams(max_tokens=5, temperature=0.0))
    assert llm.last_stats.generated_tokens == 5
    assert llm.last_stats.stop_reason == "length"


@pytest.mark.real_model
def test_stop_sequence_is_honoured(llm: Any, hello_reply: str) -> None:
    words = hello_reply.split()
    stop = words[len(words) // 2]
    cut = _reply(llm, HELLO, GenerationParams(max_tokens=24, temperature=0.0, stop=(stop,)))
    assert cut == hello_reply[: hello_reply.index(stop)]
    assert llm.last_stats.stop_reason == "stop"


@pytest.mark.real_model
def test_end_of_turn_token_ends_the_reply(llm: Any) -> None:
    short = [PERSONA, Message("user", "Say just the word 'yes'.")]
    reply = _reply(llm, short, GenerationParams(max_tokens=64, temperature=0.0))
    assert llm.last_stats.stop_reason == "eos", reply
    assert "<|im_end|>" not in reply


@pytest.mark.real_model
def test_seeded_sampling_repeats(llm: Any) -> None:
    params = GenerationParams(max_tokens=16, temperature=0.9, top_p=0.9, seed=7)
    assert _reply(llm, HELLO, params) == _reply(llm, HELLO, params)


@pytest.mark.real_model
def test_prefill_is_continued_not_repeated(llm: Any) -> None:
    params = GenerationParams(max_tokens=12, temperature=0.0, prefill="Welcome to Boston,")
    assert llm.render_prompt(HELLO, prefill="Welcome to Boston,").endswith(
        "assistant\nWelcome to Boston,"
    )
    reply = _reply(llm, HELLO, params)
    assert reply and not reply.startswith("Welcome"), reply


@pytest.mark.real_model
def test_prefix_reuse_prefills_only_the_new_turn(llm: Any, hello_reply: str) -> None:
    history = [*HELLO, Message("assistant", hello_reply)]
    for text in ("Tell me about your favourite book.", "Any tips for night shifts?") * 3:
        history += [Message("user", text), Message("assistant", "That is a lovely question. " * 8)]
    later = [*history, Message("user", "What do you remember about me?")]
    one = GenerationParams(max_tokens=1, temperature=0.0)
    llm.reset()
    cold = _reply(llm, later, one)
    cold_stats = llm.last_stats
    _reply(llm, [*history, Message("user", "And my job?")], one)  # a different last turn
    warm = _reply(llm, later, one)
    warm_stats = llm.last_stats
    # Only the new user turn is prefilled (timing it here would be flaky on a busy
    # machine; bench/generation.py --skip-speed shows the time saved).
    assert cold_stats.reused_tokens == 0
    assert cold_stats.prompt_tokens > 400
    assert warm_stats.prompt_tokens - warm_stats.reused_tokens < 20
    assert warm == cold


@pytest.mark.real_model
def test_closing_the_stream_cancels_and_the_next_call_works(llm: Any, hello_reply: str) -> None:
    reply = llm.stream(HELLO, GREEDY)
    first_chunk = next(reply)
    reply.close()
    assert llm.last_stats.stop_reason == "cancelled"
    assert hello_reply.startswith(first_chunk)
    assert _reply(llm, HELLO) == hello_reply


@pytest.mark.real_model
def test_set_threads_switches_between_replies(llm: Any, hello_reply: str) -> None:
    llm.set_threads(1)
    try:
        assert llm.threads == 1
        llm.reset()
        assert _reply(llm, HELLO) == hello_reply
    finally:
        llm.set_threads(2)
    assert llm.threads == 2
