"""Loopback by default; anywhere else needs a token, and requests without it get 401."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from companion.cli.main import main
from companion.errors import ConfigError
from companion.server import ServeSettings, check_bind, is_loopback
from companion.server.auth import authorized
from companion.server.testing import open_test_server, serving

TOKEN = "s3cret-token-for-tests"
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def url(companion_home: Path) -> Iterator[str]:
    server = open_test_server(companion_home, settings=ServeSettings(token=TOKEN))
    with serving(server) as base:
        yield base


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org", ""])
def test_any_other_address_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match="without a token"):
        check_bind(host, None)
    with pytest.raises(ConfigError):
        check_bind(host, "")
    check_bind(host, TOKEN)


def test_serve_refuses_to_start_off_loopback_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPANION_SERVE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--model", "fake"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("companion: error: refusing to listen on 0.0.0.0 without a token")


def test_serve_says_when_the_port_is_taken(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--model", "fake", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"companion: error: cannot listen on 127.0.0.1:{port}: ")
    assert err.count("\n") == 1


def test_bearer_header_parsing() -> None:
    assert authorized(f"Bearer {TOKEN}", TOKEN)
    assert authorized(f"bearer  {TOKEN} ", TOKEN)
    assert not authorized(None, TOKEN)
    assert not authorized(TOKEN, TOKEN)
    assert not authorized(f"Basic {TOKEN}", TOKEN)
    assert not authorized(f"Bearer {TOKEN}x", TOKEN)
    assert not authorized("Bearer é", TOKEN)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"X-Api-Key": TOKEN}],
    ids=["none", "wrong", "no-scheme", "other-header"],
)
def test_requests_without_the_token_get_401(url: str, headers: dict[str, str]) -> None:
    for method, path in [("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                         ("GET", "/metrics"), ("GET", "/v1/nowhere")]:
        r = httpx.request(method, f"{url}{path}", json=HELLO, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        error = r.json()["error"]
        assert error["type"] == "authentication_error"
        assert set(error) == {"message", "type", "param", "code"}


def test_a_huge_body_without_the_token_is_refused_unread(url: str) -> None:
    r = httpx.post(f"{url}/v1/chat/completions", content=b"x" * 5_000_000)
    assert r.status_code == 401


def test_the_token_opens_the_api_and_health_stays_open(url: str) -> None:
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    r = httpx.post(
        f"{url}/v1/chat/completions", json=HELLO, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 200, r.text
    with openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0) as client:
        assert client.models.list().data[0].id == "Samantha"
    with openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0) as client, \
            pytest.raises(openai.AuthenticationError):
        client.models.list()
    metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert metrics["errors"] == {"401": 1}


def test_serve_refuses_to_answer_any_host_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPANION_SERVE_TOKEN", raising=False)
    assert main(["serve", "--model", "fake", "--allow-host", "*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DNS rebinding" in err


def test_allowed_hosts_and_origins_come_from_config_options_and_the_address(
    companion_home: Path,
) -> None:
    from companion.cli.main import build_parser
    from companion.cli.options import config_from_args
    from companion.cli.serve import allowed_names

    companion_home.mkdir(parents=True, exist_ok=True)
    (companion_home / "config.toml").write_text(
        'allowed_hosts = ["companion.lan"]\nallowed_origins = ["https://chat.example"]\n'
    )
    args = build_parser().parse_args(
        ["serve", "--host", "192.168.1.10", "--allow-host", "box.local",
         "--allow-origin", "http://localhost:3000"]
    )
    hosts, origins = allowed_names(args, config_from_args(args))
    assert hosts == ("companion.lan", "box.local", "192.168.1.10")
    assert origins == ("https://chat.example", "http://localhost:3000")
    default = build_parser().parse_args(["serve", "--host", "0.0.0.0"])
    assert allowed_names(default, config_from_args(default)) == (("companion.lan",),
                                                                  ("https://chat.example",))


def test_a_bad_allowed_hosts_setting_is_one_line(
    companion_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    companion_home.mkdir(parents=True, exist_ok=True)
    (companion_home / "config.toml").write_text("allowed_hosts = [1, 2]\n")
    assert main(["serve", "--model", "fake"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "allowed_hosts must be a list of strings" in err
