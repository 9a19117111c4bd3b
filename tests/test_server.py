"""``companion serve`` over real HTTP, on the fake model: the official ``openai``
client, streaming and not, the turn stored as in the chat, per-user memory,
per-request settings, disconnects, queueing, health and metrics."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import openai
import pytest

from companion import Companion
from companion.config import load_config
from companion.llm.fake import FakeLLM
from companion.persona import load_persona
from companion.server import ServeSettings
from companion.server.app import CompanionServer
from companion.server.sessions import SessionPool
from companion.server.testing import open_test_server, serving
from companion.testing import FakeClock
from companion.types import GenerationParams, Message


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def server(companion_home: Path, llm: FakeLLM) -> CompanionServer:
    return open_test_server(companion_home, llm=llm, user="theo", clock=FakeClock())


@pytest.fixture
def url(server: CompanionServer) -> Iterator[str]:
    with serving(server) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as c:
        yield c


def fake_tokens(llm: FakeLLM, text: str) -> int:
    """Tokens of a reply as the fake model spends them: piece by piece, as streamed."""
    return sum(llm.count_tokens(piece) for piece in re.findall(r"\S+\s*|\s+", text))


def history(home: Path, user: str) -> list[tuple[str, str, bool]]:
    with Companion.open(user=user, model=FakeLLM(), home=home) as c:
        return [(t.role, t.content, t.interrupted) for t in c.history()]


def test_models_lists_the_companion(client: openai.OpenAI, server: CompanionServer) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == ["Samantha"]
    assert models[0].owned_by == "companion"
    assert client.models.retrieve("Samantha").id == "Samantha"


def test_completion_is_a_companion_turn_stored_like_the_chat(
    client: openai.OpenAI, llm: FakeLLM, companion_home: Path
) -> None:
    llm.enqueue("Nice to meet you, Theo!")
    done = client.chat.completions.create(
        model="Samantha", messages=[{"role": "user", "content": "Hi, my name is Theo."}]
    )
    assert done.object == "chat.completion"
    assert done.id.startswith("chatcmpl-")
    assert done.model == "Samantha"
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].message.content == "Nice to meet you, Theo!"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None
    assert done.usage.completion_tokens == fake_tokens(llm, "Nice to meet you, Theo!")
    assert done.usage.prompt_tokens > 50  # the persona's prompt, not just the message
    # The prompt is the companion's own: persona first, the message last.
    prompt = llm.calls[-1]
    assert prompt[0].role == "system" and "Samantha" in prompt[0].content
    assert prompt[-1] == Message("user", "Hi, my name is Theo.")
    assert history(companion_home, "theo") == [
        ("user", "Hi, my name is Theo.", False),
        ("assistant", "Nice to meet you, Theo!", False),
    ]
    with Companion.open(user="theo", model=FakeLLM(), home=companion_home) as c:
        assert c.user_name() == "Theo"  # the fact was taken, as in the chat


def test_streamed_completion_and_usage(client: openai.OpenAI, llm: FakeLLM) -> None:
    # the reply guard holds back the first clause ("Sure. One two three four."); the rest
    # streams a sentence at a time
    llm.enqueue("Sure. One two three four. Five six seven eight. Nine ten eleven twelve.")
    stream = client.chat.completions.create(
        model="samantha",  # case does not matter
        messages=[{"role": "user", "content": "Count for me."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Sure. One two three four. Five six seven eight. Nine ten eleven twelve."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3  # pieces
    finals = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finals[-1] == "stop" and set(finals[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == fake_tokens(llm, text)
    assert len({c.id for c in chunks}) == 1


def test_sse_wire_format(url: str, llm: FakeLLM) -> None:
    llm.enqueue("Hi there.")
    body = {"messages": [{"role": "user", "content": "hello"}], "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_the_turn_is_the_last_user_message_and_the_rest_is_her_memory(
    url: str, llm: FakeLLM
) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "an old message"},
            {"role": "assistant", "content": "an old answer"},
            {"role": "user", "content": [{"type": "text", "text": "What's new?"}]},
        ]
    }
    r = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert "ignored" in r.headers["x-companion-note"]
    prompt = llm.calls[-1]
    assert prompt[-1] == Message("user", "What's new?")
    text = "\n".join(m.content for m in prompt)
    assert "pirate" not in text and "an old message" not in text


def test_memories_are_shared_with_the_terminal_chat(
    client: openai.OpenAI, llm: FakeLLM, companion_home: Path
) -> None:
    with Companion.open(user="theo", model=FakeLLM(), home=companion_home) as c:
        c.say("My sister is called Maya.").text()
    client.chat.completions.create(
        model="Samantha", messages=[{"role": "user", "content": "Do you remember my sister?"}]
    )
    assert "Maya" in "\n".join(m.content for m in llm.calls[-1])


def test_users_are_isolated_by_field_and_header(
    url: str, llm: FakeLLM, companion_home: Path
) -> None:
    def say(text: str, *, user: str | None = None, header: str | None = None) -> httpx.Response:
        body: dict[str, object] = {"messages": [{"role": "user", "content": text}]}
        if user is not None:
            body["user"] = user
        headers = {"X-Companion-User": header} if header is not None else {}
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 200, r.text
        return r

    assert say("My name is Alice. I work as a pilot.", user="alice").headers[
        "x-companion-user"
    ] == "alice"
    say("My name is Bob.", header="bob", user="alice")  # the header wins
    say("What do I do for a living? What's my name?", user="bob")
    prompt = "\n".join(m.content for m in llm.calls[-1])
    assert "Bob" in prompt
    assert "Alice" not in prompt and "pilot" not in prompt
    say("Where do I work as a pilot?", user="alice")
    assert "pilot" in "\n".join(m.content for m in llm.calls[-1])
    assert [t[1] for t in history(companion_home, "bob") if t[0] == "user"] == [
        "My name is Bob.",
        "What do I do for a living? What's my name?",
    ]
    assert len(history(companion_home, "alice")) == 4
    assert history(companion_home, "theo") == []  # the default user heard nothing


def test_request_settings_override_the_config_for_that_turn(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    llm.enqueue("alpha beta STOP gamma", "a b c d e f g h")
    first = client.chat.completions.create(
        model="Samantha",
        messages=[{"role": "user", "content": "go"}],
        temperature=0.0,
        top_p=0.5,
        seed=7,
        stop=["STOP"],
    )
    params = llm.params[-1]
    assert (params.temperature, params.top_p, params.seed) == (0.0, 0.5, 7)
    assert "STOP" in params.stop and "\nUser:" in params.stop  # hers are kept
    assert first.choices[0].message.content == "alpha beta "  # as streamed
    second = client.chat.completions.create(
        model="Samantha", messages=[{"role": "user", "content": "go on"}], max_tokens=3
    )
    assert llm.params[-1].max_tokens == 3
    assert second.choices[0].finish_reason == "length"
    assert llm.params[-1].temperature == 0.7  # back to the config's
    third = client.chat.completions.create(
        model="Samantha",
        messages=[{"role": "user", "content": "more"}],
        max_completion_tokens=5,
    )
    assert llm.params[-1].max_tokens == 5
    assert third.choices[0].finish_reason in ("stop", "length")


def test_request_settings_are_the_turns_own(
    client: openai.OpenAI, llm: FakeLLM, server: CompanionServer
) -> None:
    client.chat.completions.create(
        model="Samantha", messages=[{"role": "user", "content": "go"}],
        temperature=0.1, max_tokens=5, seed=3, stop=["STOP"],
    )
    assert llm.params[-1].max_tokens == 5 and "STOP" in llm.params[-1].stop
    with server.pool.session("theo") as session:
        config = session.companion.config  # left as configured, not as the last request set it
        assert (config.temperature, config.max_tokens, config.seed) == (0.7, 200, None)
        assert not hasattr(session.llm, "stop")  # nor the model's stop list


def test_server_sessions_condense_memory_as_the_chat_does(companion_home: Path) -> None:
    server = open_test_server(
        companion_home, user="theo", settings=ServeSettings(idle_seconds=0.05)
    )
    with serving(server) as url:
        for text in ("I went hiking in the Alps with my sister Maya last weekend.",
                     "We saw ibexes near the glacier and camped by a lake."):
            r = httpx.post(
                f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": text}]}
            )
            assert r.status_code == 200, r.text
            time.sleep(0.3)  # idle past 0.05 s: each request is a session of its own
        with server.pool.session("theo") as session:
            summaries = session.companion.store.export_user("theo")["summaries"]
    assert len(summaries) == 2 and "Alps" in summaries[0]["text"]  # both finished sessions


def test_a_client_leaving_mid_stream_stops_the_reply_and_keeps_it(
    companion_home: Path,
) -> None:
    # words that do not repeat, so the reply guard lets the stream through at once
    llm = FakeLLM([" ".join(f"word{i}" for i in range(200))], delay=0.02)
    server = open_test_server(companion_home, llm=llm, user="theo")
    with serving(server) as url:
        body = {"messages": [{"role": "user", "content": "talk"}], "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
            lines = r.iter_lines()
            for _ in range(5):
                next(lines)
        _wait(lambda: server.metrics.snapshot()["interrupted"] == 1)
        stored = history(companion_home, "theo")
        assert stored[0] == ("user", "talk", False)
        role, text, interrupted = stored[1]
        assert role == "assistant" and interrupted
        assert 0 < len(text.split()) < 100  # generation stopped early
        llm.enqueue("Still here.")
        r2 = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user",
                                                                        "content": "hi"}]})
        assert r2.json()["choices"][0]["message"]["content"] == "Still here."
        assert server.metrics.snapshot()["errors"] == {"499": 1}


class OneAtATime:
    """An LLM that fails the test if two replies are ever generated at once."""

    def __init__(self, inner: FakeLLM) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_length = inner.context_length
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        chunks = self.inner.stream(messages, params)
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            yield from chunks
        finally:
            with self._lock:
                self.active -= 1


def test_concurrent_requests_queue_for_the_one_model(companion_home: Path) -> None:
    model = OneAtATime(FakeLLM(delay=0.002))
    server = open_test_server(companion_home, llm=model)

    async def one(client: httpx.AsyncClient, i: int) -> str:
        body = {"messages": [{"role": "user", "content": f"number {i}"}], "stream": True,
                "user": f"u{i % 4}"}
        text = ""
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    text += json.loads(line[6:])["choices"][0]["delta"].get("content", "")
        return text

    async def all_of(url: str) -> list[str]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await asyncio.gather(*(one(client, i) for i in range(16)))

    with serving(server) as url:
        replies = asyncio.run(all_of(url))
    assert all(f"number {i}" in reply for i, reply in enumerate(replies))
    assert model.most == 1
    snap = server.metrics.snapshot()
    assert snap["completed"] == 16 and snap["errors"] == {}
    for u in range(4):
        assert len(history(companion_home, f"u{u}")) == 8  # 4 turns each, all whole


def test_a_full_queue_is_refused_with_503(companion_home: Path) -> None:
    llm = FakeLLM([" ".join(f"slow{i}" for i in range(100))], delay=0.02)
    server = open_test_server(companion_home, llm=llm, settings=ServeSettings(max_queue=1))
    with serving(server) as url, httpx.Client(base_url=url, timeout=30) as http:
        body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as first:
            assert first.status_code == 200  # running
            waiting = threading.Thread(
                target=http.post, args=("/v1/chat/completions",), kwargs={"json": body}
            )
            waiting.start()
            _wait(lambda: server.metrics.queued == 1)
            refused = http.post("/v1/chat/completions", json=body)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "server_busy"
        waiting.join()


def test_health_and_metrics_report_stage_timings(url: str, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="Samantha", messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}  # no token: nothing more
    metrics = httpx.get(f"{url}/metrics").json()
    assert metrics["requests"] == 1 and metrics["completed"] == 1
    for stage in ("recall", "prompt", "first_token", "total"):
        assert metrics["stages"][stage]["count"] == 1
    stages = metrics["stages"]
    assert stages["first_token"]["p50_ms"] <= stages["total"]["p50_ms"]
    text = httpx.get(f"{url}/metrics", params={"format": "prometheus"}).text
    assert 'companion_requests_total{model="Samantha"} 1' in text
    assert 'companion_first_token_seconds{model="Samantha",quantile="0.95"}' in text


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_message_cut_down_for_the_model_says_so_in_a_header(url: str) -> None:
    body = {"messages": [{"role": "user", "content": "word " * 5000}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert "characters" in r.headers["x-companion-note"]


def test_the_pool_closes_the_least_recently_used_and_the_idle(companion_home: Path) -> None:
    config = load_config(home=companion_home)
    persona = load_persona(config.persona)
    llm = FakeLLM()
    pool = SessionPool(llm, config, persona, home=companion_home, max_users=2)
    with pool.session("a") as a:
        first_session = a.companion.session.id
    for user in ("b", "a"):
        with pool.session(user):
            pass
    with pool.session("c"):
        assert pool.users() == ["a", "c"]  # b was the least recently used
    pool.idle_seconds = 0.0
    time.sleep(0.01)
    with pool.session("a") as again:
        assert again.companion.session.id != first_session  # idle: a new session
        assert again.llm.inner is llm  # one model for everyone
    pool.close()
    with Companion.open(user="b", model=FakeLLM(), home=companion_home) as c:
        ended = c.store.sessions("b")
        assert ended[0].ended_at is not None  # closing ended b's session


def test_openai_penalties_reach_the_sampler_for_that_turn(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    llm.enqueue("Lovely.", "Sure.")
    client.chat.completions.create(
        model="Samantha",
        messages=[{"role": "user", "content": "tell me about the sea"}],
        frequency_penalty=0.5,
        presence_penalty=0.25,
    )
    params = llm.params[-1]
    assert (params.frequency_penalty, params.presence_penalty) == (0.5, 0.25)
    assert params.echo_text == "tell me about the sea"  # her own guards stay on
    client.chat.completions.create(
        model="Samantha", messages=[{"role": "user", "content": "and the sky?"}]
    )
    assert (llm.params[-1].frequency_penalty, llm.params[-1].presence_penalty) == (0.0, 0.0)
