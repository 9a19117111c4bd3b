"""The client backend against a real OpenAI-compatible server in another process:
``companion serve`` itself, on the fake model, with a token. Then the same turn
with the remote backend: memory, persona and dialog stay here."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from companion import Companion
from companion.errors import ModelError, ModelNotFoundError
from companion.llm.loader import load_llm
from companion.llm.openai_backend import OpenAIChatLLM, open_openai_llm
from companion.types import GenerationParams, Message

TOKEN = "live-test-token"
HELLO = [Message("system", "ignored by the companion server"), Message("user", "Hello there")]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``companion serve --model fake --port 0`` in a subprocess; yields its /v1 URL."""
    home = tmp_path_factory.mktemp("remote-home")
    env = {**os.environ, "COMPANION_HOME": str(home), "COMPANION_SERVE_TOKEN": TOKEN,
           "HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "companion", "serve", "--model", "fake", "--port", "0",
         "--user", "remote"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+/v1) \(token required", line)
        assert found, line
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == 130  # stopped as by Ctrl-C, after a graceful shutdown


@pytest.fixture
def llm(remote: str) -> Iterator[OpenAIChatLLM]:
    backend = open_openai_llm(f"openai:{remote}#Samantha", api_key=TOKEN)
    yield backend
    backend.close()


def test_streams_a_reply_from_the_other_process(llm: OpenAIChatLLM) -> None:
    assert llm.context_length == 4096  # what the server reports as max_model_len
    pieces = list(llm.stream(HELLO, GenerationParams(max_tokens=100, temperature=0.3)))
    assert len(pieces) > 1
    assert "".join(pieces).startswith("Mm, Hello there. ")
    stats = llm.last_stats
    assert stats is not None and stats.stop_reason == "eos" and stats.generated_tokens > 0


def test_stop_and_max_tokens_reach_the_server(llm: OpenAIChatLLM) -> None:
    text = "".join(llm.stream(HELLO, GenerationParams(stop=(".",))))
    assert text == "Mm, Hello there"
    short = "".join(llm.stream(HELLO, GenerationParams(max_tokens=3)))
    assert short == "Mm, Hello "
    assert llm.last_stats is not None and llm.last_stats.stop_reason == "length"


def test_load_llm_takes_an_openai_spec_with_the_key_from_the_env(
    remote: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPANION_OPENAI_KEY", TOKEN)
    lines: list[str] = []
    llm = load_llm(f"openai:{remote}", progress=lines.append)  # the only model
    assert isinstance(llm, OpenAIChatLLM) and llm.name == "Samantha"
    assert lines == [f"connecting to openai:{remote}"]
    llm.close()


def test_a_wrong_key_model_or_url_is_one_clear_error(remote: str) -> None:
    with pytest.raises(ModelError, match="API key was refused"):
        open_openai_llm(f"openai:{remote}#Samantha", api_key="wrong")
    with pytest.raises(ModelError, match="needs an API key"):
        open_openai_llm(f"openai:{remote}#Samantha", api_key="")
    with pytest.raises(ModelNotFoundError, match="available: Samantha"):
        open_openai_llm(f"openai:{remote}#gpt-4o", api_key=TOKEN)
    not_checked = OpenAIChatLLM(remote, "gpt-4o", api_key=TOKEN)
    with pytest.raises(ModelNotFoundError, match="available: Samantha"):
        list(not_checked.stream(HELLO, GenerationParams()))
    not_checked.close()
    with pytest.raises(ModelError, match="is the URL right"):
        open_openai_llm(f"openai:{remote.removesuffix('/v1')}#Samantha", api_key=TOKEN)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(ModelError, match=rf"cannot connect to http://127.0.0.1:{closed}/v1"):
            open_openai_llm(f"openai:http://127.0.0.1:{closed}/v1#m?retries=1", api_key=TOKEN)


def test_the_same_turn_on_a_remote_backend(llm: OpenAIChatLLM, companion_home: Path) -> None:
    with Companion.open(user="theo", model=llm, home=companion_home) as c:
        reply = c.say("Hi, I'm Theo. My sister is called Maya.")
        assert reply.text().startswith("Mm, called Maya. ")
        assert any("Maya" in m.text for m in c.memories())  # remembered here
    with Companion.open(user="theo", model=llm, home=companion_home) as c:
        assert [t.role for t in c.history()] == ["user", "assistant"]
