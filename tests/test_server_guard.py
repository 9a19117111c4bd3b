"""No web page can use the server: foreign Host names, browser origins and bodies
that do not say they are JSON are refused before anything is stored; ``/health``
tells nothing without the token; hostile JSON gets a 400, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from companion.errors import ConfigError
from companion.llm.fake import FakeLLM
from companion.memory import Store
from companion.server import ServeSettings
from companion.server.guard import check_hosts, host_name
from companion.server.schema import MAX_DEPTH, ApiError, parse_chat_request
from companion.server.testing import open_test_server, serving

TOKEN = "guard-test-token"
FORGET = {"messages": [{"role": "user", "content": "please forget about Paris"}]}
JSON = {"Content-Type": "application/json"}


def _store(home: Path, user: str = "theo") -> dict[str, Any]:
    store = Store.open(home / "companion.db")
    try:
        return store.export_user(user)
    finally:
        store.close()


@pytest.fixture
def served(companion_home: Path) -> Iterator[tuple[str, Path]]:
    server = open_test_server(
        companion_home,
        llm=FakeLLM(),
        user="theo",
        settings=ServeSettings(
            allowed_hosts=("companion.lan",), allowed_origins=("https://chat.example",)
        ),
    )
    with serving(server) as url:
        ok = httpx.post(
            f"{url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "I live in Paris."}]},
        )
        assert ok.status_code == 200, ok.text
        yield url, companion_home


# The reproduction, and each of its parts alone.
CROSS_SITE = [
    pytest.param({"Content-Type": "text/plain", "Origin": "http://evil.example",
                  "Host": "evil.example:8000"}, 403, "host_not_allowed", id="issue-repro"),
    pytest.param({"Content-Type": "text/plain"}, 415, "unsupported_media_type", id="text-plain"),
    pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, 415,
                 "unsupported_media_type", id="form"),
    pytest.param({"Content-Type": "multipart/form-data; boundary=x"}, 415,
                 "unsupported_media_type", id="multipart"),
    pytest.param({"Content-Type": "application/json; charset=latin-1"}, 415,
                 "unsupported_media_type", id="json-latin1"),
    pytest.param({}, 415, "unsupported_media_type", id="no-content-type"),
    pytest.param({**JSON, "Origin": "http://evil.example"}, 403, "origin_not_allowed",
                 id="evil-origin"),
    pytest.param({**JSON, "Origin": "null"}, 403, "origin_not_allowed", id="null-origin"),
    pytest.param({**JSON, "Host": "evil.example:8000"}, 403, "host_not_allowed",
                 id="rebound-host"),
    pytest.param({**JSON, "Host": "127.0.0.1.evil.example"}, 403, "host_not_allowed",
                 id="loopback-lookalike"),
    pytest.param({**JSON, "Sec-Fetch-Site": "cross-site"}, 403, "origin_not_allowed",
                 id="cross-site-fetch"),
]


@pytest.mark.parametrize(("headers", "status", "code"), CROSS_SITE)
def test_cross_site_requests_are_refused_and_change_nothing(
    served: tuple[str, Path], headers: dict[str, str], status: int, code: str
) -> None:
    url, home = served
    before = _store(home)
    assert any("Paris" in f["text"] for f in before["facts"])
    r = httpx.post(
        f"{url}/v1/chat/completions", content=json.dumps(FORGET).encode(), headers=headers
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and "\n" not in error["message"]
    assert _store(home) == before


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LOCALHOST", "localhost.",
             "[::1]:8000", "127.4.5.6:1", "companion.lan", "Companion.LAN:8000"],
)
def test_loopback_and_configured_hosts_are_served(served: tuple[str, Path], host: str) -> None:
    url, _ = served
    r = httpx.get(f"{url}/v1/models", headers={"Host": host})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8",
                     "Application/JSON;charset=UTF-8", 'application/json; charset="utf8"'],
)
def test_json_content_types_are_accepted(served: tuple[str, Path], content_type: str) -> None:
    url, _ = served
    body = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()
    r = httpx.post(
        f"{url}/v1/chat/completions", content=body, headers={"Content-Type": content_type}
    )
    assert r.status_code == 200, r.text


def test_an_allowed_origin_may_call_it_with_cors(served: tuple[str, Path]) -> None:
    url, _ = served
    origin = {"Origin": "https://chat.example"}
    preflight = httpx.options(
        f"{url}/v1/chat/completions",
        headers={**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type, authorization"},
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
    r = httpx.post(
        f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]},
        headers={**origin, "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "https://chat.example"
    evil = httpx.options(
        f"{url}/v1/chat/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers


def test_health_says_only_ok_without_the_token(companion_home: Path) -> None:
    server = open_test_server(companion_home, settings=ServeSettings(token=TOKEN))
    with serving(server) as url:
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        wrong = httpx.get(f"{url}/health", headers={"Authorization": "Bearer nope"})
        assert wrong.json() == {"status": "ok"}
        health = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert health["status"] == "ok" and health["model"] == "Samantha" and health["llm"] == "fake"
    assert health["users"] == 0
    assert set(health["p50_ms"]) == {"queue", "recall", "prompt", "first_token", "total"}


def test_health_says_only_ok_without_a_token_configured(companion_home: Path) -> None:
    with serving(open_test_server(companion_home)) as url:
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}


def test_answering_any_host_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="DNS rebinding"):
        check_hosts(["*"], None)
    check_hosts(["*"], TOKEN)
    check_hosts(["companion.lan"], None)


@pytest.mark.parametrize(
    ("header", "name"),
    [("localhost:8000", "localhost"), ("[::1]:80", "::1"), ("[::1]", "::1"),
     ("Example.ORG.", "example.org"), ("127.0.0.1", "127.0.0.1"), ("::1", "::1")],
)
def test_host_names(header: str, name: str) -> None:
    assert host_name(header) == name


# -- hostile JSON ------------------------------------------------------------

HOSTILE = [
    pytest.param(b'{"messages": [{"role": "user", "content": "hi \\ud800 there"}]}',
                 "not valid Unicode", id="lone-surrogate"),
    pytest.param(b'{"messages": [{"role": "user", "content": "hi"}], "user": "\\udfff"}',
                 "not valid Unicode", id="surrogate-user"),
    pytest.param(b'{"messages": [{"role": "user", "content": "hi"}], "metadata": {"\\ud800": 1}}',
                 "not valid Unicode", id="surrogate-key"),
    pytest.param(b'{"messages": [{"role": "user", "content": "hi"}], "metadata": '
                 + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply", id="100k-deep"),
    pytest.param(b'{"messages": [{"role": "user", "content": "hi"}], "metadata": {"a": '
                 + b"[" * 40 + b"]" * 40 + b"}}", "nested too deeply", id="40-deep"),
]


@pytest.mark.parametrize(("body", "says"), HOSTILE)
def test_hostile_json_is_a_400_with_one_line(
    served: tuple[str, Path], body: bytes, says: str
) -> None:
    url, home = served
    before = _store(home)
    r = httpx.post(f"{url}/v1/chat/completions", content=body, headers=JSON, timeout=30)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert says in message and "\n" not in message
    assert _store(home) == before
    ok = httpx.post(f"{url}/v1/chat/completions",
                    json={"messages": [{"role": "user", "content": "still there?"}]})
    assert ok.status_code == 200


def test_nesting_up_to_the_limit_is_parsed() -> None:
    inner: Any = "x"
    for _ in range(MAX_DEPTH - 1):
        inner = [inner]
    body = {"messages": [{"role": "user", "content": "hi"}], "metadata": {"a": inner}}
    with pytest.raises(ApiError, match="too deeply"):
        parse_chat_request(json.dumps(body).encode())
    body["metadata"] = {"a": inner[0]}
    assert parse_chat_request(json.dumps(body).encode()).turn_text() == "hi"
