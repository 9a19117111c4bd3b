"""Hostile HTTP: bodies, headers, paths, against the server app on the fake model.

Whatever arrives, the answer is never a 500 (a crash): a 4xx with one OpenAI
style error object, whose message is one line; a refused request leaves the
store as it was; and a request a web page could make (a foreign ``Host`` or
``Origin``, or a body that does not say it is JSON) never reaches memory.
Strategies: tests/hostile_inputs.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hostile_inputs import deep_json, header_text, hostile_text, http_requests, snapshot
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from companion.llm.fake import FakeLLM
from companion.server.guard import host_name
from companion.server.testing import open_test_server

BOUNDED = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    home = tmp_path_factory.mktemp("hostile-server")
    server = open_test_server(home, llm=FakeLLM(), user="theo")
    with TestClient(server.app, base_url="http://127.0.0.1:8000",
                    raise_server_exceptions=False) as client:
        yield client, home


def _check_error(status: int, body: bytes) -> None:
    """A refusal is an OpenAI-style error object with a one-line message."""
    error = json.loads(body)["error"]
    assert isinstance(error["message"], str) and error["message"], body
    assert "\n" not in error["message"] and "Traceback" not in error["message"]


def _from_a_web_page(headers: dict[str, str]) -> bool:
    host = host_name(headers.get("host", "127.0.0.1:8000"))
    foreign_host = host not in LOOPBACK and not host.startswith("127.")
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    return foreign_host or "origin" in headers or media != "application/json"


@BOUNDED
@given(request=http_requests())
def test_any_completion_request_is_answered_or_refused_never_a_crash(
    served: tuple[TestClient, Path], request: tuple[dict[str, str], bytes]
) -> None:
    client, home = served
    headers, body = request
    before = snapshot(home)
    sent = {name.encode(): value.encode("latin-1") for name, value in headers.items()}
    r = client.post("/v1/chat/completions", content=body, headers=sent)
    assert r.status_code < 500 or r.status_code == 503, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        _check_error(r.status_code, r.content)
        assert snapshot(home) == before, "a refused request changed the store"
    if _from_a_web_page(headers):
        assert r.status_code in (400, 403, 413, 415), (headers, r.status_code)
        assert snapshot(home) == before


@pytest.mark.parametrize(
    "body",
    [
        deep_json(100_000).encode(),
        b'{"messages": [{"role": "user", "content": "\\ud800 lone"}]}',
        b'{"messages": [{"role": "user", "content": "\\udc80"}]}',
        '{"messages": [{"role": "user", "content": "caf\u00e9"}]}'.encode("latin-1"),
        b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}',
        b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 99999999999999999999}',
    ],
    ids=["deep", "lone-high-surrogate", "lone-low-surrogate", "latin-1", "huge-float",
         "huge-int"],
)
def test_known_hostile_bodies_are_a_400(served: tuple[TestClient, Path], body: bytes) -> None:
    client, home = served
    before = snapshot(home)
    r = client.post("/v1/chat/completions", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    _check_error(r.status_code, r.content)
    assert snapshot(home) == before


@BOUNDED
@given(path=hostile_text(4), value=header_text())
def test_any_path_and_header_on_the_read_endpoints(
    served: tuple[TestClient, Path], path: str, value: str
) -> None:
    client, _ = served
    quoted = quote(path.encode("utf-8", "surrogatepass"), safe="")
    for url in (f"/v1/models/{quoted}", f"/{quoted}", f"/health?x={quoted}",
                f"/metrics?format={quoted}"):
        raw = value.encode("latin-1")
        r = client.get(url, headers={b"x-companion-user": raw, b"authorization": raw})
        assert r.status_code < 500, (url, r.status_code, r.text[:200])


def test_health_without_a_token_says_only_ok(served: tuple[TestClient, Path]) -> None:
    client, _ = served
    r = client.get("/health")
    assert r.status_code == 200
    assert "users" not in r.text and "fake" not in r.text.lower()
