"""Bad requests get a 4xx with an OpenAI-style error object; the server keeps
serving, and nothing of a refused request reaches memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from companion import Companion
from companion.llm.fake import FakeLLM
from companion.server.schema import ApiError, parse_chat_request
from companion.server.testing import open_test_server, serving

USER = {"role": "user", "content": "hello"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One server for the whole module: every bad request must leave it serving."""
    home = tmp_path_factory.mktemp("server-input")
    server = open_test_server(home, llm=FakeLLM(), user="theo")
    with serving(server) as url:
        yield url, home


def _post(url: str, body: Any = None, *, raw: bytes | None = None, **kw: Any) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return httpx.post(
        f"{url}/v1/chat/completions", content=content, headers=headers, timeout=30, **kw
    )


def _check_error(r: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and error["type"]
    if param is not None:
        assert error["param"] == param
    return dict(error)


BAD = [
    pytest.param(b"{not json", 400, None, id="malformed-json"),
    pytest.param(b"\xff\xfe", 400, None, id="not-utf8"),
    pytest.param(b"", 400, None, id="empty-body"),
    pytest.param(b"[1, 2]", 400, None, id="not-an-object"),
    pytest.param({"messages": [USER], "colour": "red", "size": 3}, 400, "colour", id="unknown"),
    pytest.param({}, 400, "messages", id="no-messages"),
    pytest.param({"messages": []}, 400, "messages", id="empty-messages"),
    pytest.param({"messages": "hello"}, 400, "messages", id="messages-not-a-list"),
    pytest.param({"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].role",
                 id="tool-role"),
    pytest.param({"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role",
                 id="unknown-role"),
    pytest.param({"messages": [{"content": "x"}]}, 400, "messages[0].role", id="no-role"),
    pytest.param({"messages": [{"role": "user", "content": ""}]}, 400, "messages[0].content",
                 id="empty-content"),
    pytest.param({"messages": [{"role": "user", "content": " \n\t "}]}, 400,
                 "messages[0].content", id="blank-content"),
    pytest.param({"messages": [{"role": "user"}]}, 400, "messages[0].content",
                 id="null-content"),
    pytest.param({"messages": [{"role": "user", "content": 42}]}, 400, "messages[0].content",
                 id="number-content"),
    pytest.param({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}, 400,
        "messages[0].content", id="image-content"),
    pytest.param({"messages": [USER, {"role": "assistant", "content": "hi"}]}, 400, "messages",
                 id="last-is-assistant"),
    pytest.param({"messages": [{"role": "system", "content": "be nice"}]}, 400, "messages",
                 id="only-system"),
    pytest.param({"messages": [USER], "n": 2}, 400, "n", id="n-2"),
    pytest.param({"messages": [USER], "tools": [{"type": "function"}]}, 400, "tools",
                 id="tools"),
    pytest.param({"messages": [USER], "logprobs": True}, 400, "logprobs", id="logprobs"),
    pytest.param({"messages": [USER], "response_format": {"type": "json_object"}}, 400,
                 "response_format", id="json-mode"),
    pytest.param({"messages": [USER], "stop": ["a", "b", "c", "d", "e"]}, 400, "stop",
                 id="five-stops"),
    pytest.param({"messages": [USER], "stop": 3}, 400, "stop", id="stop-number"),
    pytest.param({"messages": [USER], "temperature": 9}, 400, "temperature", id="too-hot"),
    pytest.param({"messages": [USER], "temperature": "0.5"}, 400, "temperature",
                 id="string-number"),
    pytest.param({"messages": [USER], "max_tokens": 0}, 400, "max_tokens", id="no-tokens"),
    pytest.param({"messages": [USER], "stream": "yes"}, 400, "stream", id="stream-string"),
    pytest.param({"messages": [USER], "user": ""}, 400, "user", id="empty-user"),
    pytest.param({"messages": [USER], "user": "x" * 65}, 400, "user", id="long-user"),
    pytest.param({"messages": [USER], "user": "a\x00b"}, 400, "user", id="control-user"),
    pytest.param({"messages": [USER], "model": "gpt-4o"}, 404, "model", id="unknown-model"),
]


@pytest.mark.parametrize(("body", "status", "param"), BAD)
def test_bad_request_is_refused_and_the_server_keeps_serving(
    served: tuple[str, Path], body: Any, status: int, param: str | None
) -> None:
    url, home = served
    raw = body if isinstance(body, bytes) else None
    _check_error(_post(url, body, raw=raw), status, param)
    ok = _post(url, {"messages": [USER], "user": "healthy"})
    assert ok.status_code == 200, ok.text


def test_nothing_of_a_refused_request_is_stored(served: tuple[str, Path]) -> None:
    url, home = served
    for case in BAD:
        body = case.values[0]
        if isinstance(body, dict):
            _post(url, {**body, "user": "victim"} if "user" not in body else body)
    with Companion.open(user="victim", model=FakeLLM(), home=home) as c:
        assert c.history() == []


def test_a_10_mb_body_gets_413_without_being_read(served: tuple[str, Path]) -> None:
    url, _ = served
    body = b'{"messages": [{"role": "user", "content": "' + b"a" * 10_000_000 + b'"}]}'
    error = _check_error(_post(url, raw=body), 413)
    assert error["code"] == "request_too_large"


def test_a_chunked_body_past_the_limit_gets_413(served: tuple[str, Path]) -> None:
    url, _ = served

    def pieces() -> Iterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(2_000):
            yield b"a" * 1_000
        yield b'"}]}'

    r = httpx.post(
        f"{url}/v1/chat/completions", content=pieces(), timeout=30,
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    _check_error(r, 413)


def test_bad_user_header_is_refused(served: tuple[str, Path]) -> None:
    url, _ = served
    r = _post(url, {"messages": [USER]}, headers={"X-Companion-User": "x" * 65})
    _check_error(r, 400, "x-companion-user")


def test_unknown_path_and_wrong_method_are_openai_errors(served: tuple[str, Path]) -> None:
    url, _ = served
    _check_error(httpx.get(f"{url}/v1/completions"), 404)
    _check_error(httpx.get(f"{url}/v1/chat/completions"), 405)
    _check_error(httpx.get(f"{url}/v1/models/gpt-4o"), 404)


def test_standard_openai_fields_are_accepted() -> None:
    request = parse_chat_request(
        json.dumps(
            {
                "model": "Samantha",
                "messages": [{"role": "developer", "content": "x"}, USER],
                "n": 1,
                "presence_penalty": 0.5,
                "frequency_penalty": -0.5,
                "logit_bias": {"50256": -100},
                "response_format": {"type": "text"},
                "stream": True,
                "stream_options": {"include_usage": True},
                "top_p": 0.9,
                "user": "theo",
                "seed": 1,
                "stop": "\n\n",
                "max_completion_tokens": 64,
                "logprobs": False,
                "metadata": {"k": "v"},
                "store": False,
                "tool_choice": "none",
                "parallel_tool_calls": False,
            }
        ).encode()
    )
    assert request.turn_text() == "hello"
    assert request.stops == ("\n\n",)
    assert request.reply_tokens == 64
    assert request.include_usage


def test_errors_name_every_unknown_field() -> None:
    with pytest.raises(ApiError) as caught:
        parse_chat_request(b'{"messages": [], "foo": 1, "bar": 2}')
    assert "'foo'" in caught.value.message and "'bar'" in caught.value.message
