"""``companion serve`` on the real default model, through the official ``openai`` client."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from companion import Companion
from companion.llm.fake import FakeLLM
from companion.llm.loader import load_llm
from companion.server.testing import open_test_server, serving

pytestmark = pytest.mark.real_model

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def llm() -> Iterator[object]:
    # Not importorskip: the backend imports torch itself first, so that idle OpenMP
    # threads sleep. Spinning ones (torch's default) would starve the server's
    # generation thread, which is not the thread that loaded the model.
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    yield load_llm(MODEL, threads=2, progress=lambda _: None)


def test_openai_client_against_the_default_model(llm: object, companion_home: Path) -> None:
    server = open_test_server(companion_home, llm=llm, user="theo")  # type: ignore[arg-type]
    with serving(server) as url, openai.OpenAI(
        base_url=f"{url}/v1", api_key="-", max_retries=0
    ) as client:
        done = client.chat.completions.create(
            model="Samantha",
            messages=[{"role": "user", "content": "Hi, I'm Theo. I just moved to Boston."}],
            temperature=0,
            max_tokens=12,
        )
        text = done.choices[0].message.content or ""
        assert len(text.split()) >= 2, text
        assert "<|im_" not in text
        assert done.usage is not None
        assert 0 < done.usage.completion_tokens <= 12
        assert done.usage.prompt_tokens > 100
        assert done.choices[0].finish_reason == (
            "length" if done.usage.completion_tokens == 12 else "stop"
        )
        stream = client.chat.completions.create(
            model="Samantha",
            messages=[{"role": "user", "content": "What city did I move to?"}],
            temperature=0,
            max_tokens=12,
            stream=True,
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert streamed.strip()
    with Companion.open(user="theo", model=FakeLLM(), home=companion_home) as c:
        turns = c.history()
        assert [t.role for t in turns] == ["user", "assistant"] * 2
        assert turns[3].content == streamed.strip()
