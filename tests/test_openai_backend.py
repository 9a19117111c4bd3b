"""The OpenAI-compatible client backend against scripted servers (``httpx.MockTransport``):
the request it sends, the stream it reads, retries, and its errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from companion.errors import ModelError, ModelNotFoundError
from companion.llm.base import LLM
from companion.llm.openai_backend import (
    DEFAULT_CONTEXT,
    OpenAIChatLLM,
    OpenAISpec,
    estimate_tokens,
    parse_spec,
)
from companion.types import GenerationParams, Message

URL = "http://engine.test:8000/v1"
MESSAGES = [Message("system", "Be brief."), Message("user", "Hi!")]
Handler = Callable[[httpx.Request], httpx.Response]


def sse(*events: dict[str, Any] | str) -> bytes:
    return b"".join(
        f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
    )


def delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def streaming(*events: dict[str, Any] | str) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=sse(*events), headers={"content-type": "text/event-stream"}
        )

    return handle


def models(*ids: str, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"object": "list", "data": [{"id": i, **extra} for i in ids]})


def backend(handler: Handler, model: str | None = "m", **kw: Any) -> OpenAIChatLLM:
    kw.setdefault("backoff", 0.0)
    return OpenAIChatLLM(URL, model, transport=httpx.MockTransport(handler), **kw)


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


def recording(seen: list[httpx.Request], handler: Handler) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return handler(request)

    return handle


# -- specs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("openai:http://localhost:8000/v1#qwen", OpenAISpec("http://localhost:8000/v1", "qwen")),
        ("openai:http://h:1/v1/#org/model-7b?ctx=8192&timeout=30&retries=0",
         OpenAISpec("http://h:1/v1", "org/model-7b", 8192, 30.0, 0)),
        ("openai:https://api.example.org/v1", OpenAISpec("https://api.example.org/v1")),
        ("openai:http://h/v1#llama3.2:latest", OpenAISpec("http://h/v1", "llama3.2:latest")),
    ],
)
def test_spec_parsing(spec: str, want: OpenAISpec) -> None:
    assert parse_spec(spec) == want


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("openai:localhost:8000#m", "http:// or https://"),
        ("openai:ftp://h/v1#m", "http:// or https://"),
        ("openai:http://h/v1?x=1#m", "after '#'"),
        ("openai:http://h/v1#m?context=9", "unknown option 'context'"),
        ("openai:http://h/v1#m?ctx=big", "ctx must be a number"),
        ("openai:http://h/v1#m?ctx=0", "out of range"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, words: str) -> None:
    with pytest.raises(ModelError, match=words.replace("?", r"\?")):
        parse_spec(spec)


def test_it_is_an_llm_with_an_estimated_token_count() -> None:
    llm = backend(streaming("[DONE]"))
    assert isinstance(llm, LLM)
    assert llm.name == "m" and llm.context_length == DEFAULT_CONTEXT
    assert llm.count_tokens("Hello there, Theo") == 5  # 17 bytes / 4
    assert estimate_tokens("日本語") == 3  # 9 bytes: the safe side for other scripts
    assert estimate_tokens("") == 0


# -- the request and the stream ---------------------------------------------------------


def test_request_carries_the_messages_and_settings(seen: list[httpx.Request]) -> None:
    llm = backend(recording(seen, streaming(delta("Hi"), "[DONE]")), api_key="k-123")
    params = GenerationParams(
        max_tokens=33, temperature=0.2, top_p=0.8, seed=5, stop=("a", "b", "c", "d", "e")
    )
    assert "".join(llm.stream(MESSAGES, params)) == "Hi"
    request = seen[-1]
    assert request.method == "POST" and str(request.url) == f"{URL}/chat/completions"
    assert request.headers["authorization"] == "Bearer k-123"
    body = json.loads(request.content)
    assert body["model"] == "m" and body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
    ]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (
        33, 0.2, 0.8, 5,
    )
    assert body["stop"] == ["a", "b", "c", "d"]  # the API's limit; "e" applies here
    assert body["stream_options"] == {"include_usage": True}


def test_no_key_no_header_and_no_seed_when_unset(seen: list[httpx.Request]) -> None:
    llm = backend(recording(seen, streaming("[DONE]")))
    assert list(llm.stream(MESSAGES, GenerationParams())) == []
    assert "authorization" not in seen[-1].headers
    body = json.loads(seen[-1].content)
    assert "seed" not in body and "stop" not in body


def test_prefill_is_sent_as_the_start_of_the_assistant_message(
    seen: list[httpx.Request],
) -> None:
    llm = backend(recording(seen, streaming(delta(" good to see you."), "[DONE]")))
    assert "".join(llm.stream(MESSAGES, GenerationParams(prefill="Theo!"))) == " good to see you."
    assert json.loads(seen[-1].content)["messages"][-1] == {
        "role": "assistant", "content": "Theo!",
    }


def test_stream_reads_pieces_usage_and_finish_reason() -> None:
    llm = backend(
        streaming(
            {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
            delta("Hello"),
            delta(", Theo"),
            delta("", "length"),
            {"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 4}},
            "[DONE]",
        )
    )
    assert list(llm.stream(MESSAGES, GenerationParams())) == ["Hello", ", Theo"]
    stats = llm.last_stats
    assert stats is not None
    assert (stats.prompt_tokens, stats.generated_tokens, stats.stop_reason) == (21, 4, "length")


def test_stop_sequences_hold_even_if_the_server_ignores_them() -> None:
    llm = backend(streaming(delta("Sure.\nUs"), delta("er: and then"), "[DONE]"))
    pieces = list(llm.stream(MESSAGES, GenerationParams(stop=("\nUser:",))))
    assert "".join(pieces) == "Sure."
    assert llm.last_stats is not None and llm.last_stats.stop_reason == "stop"
    assert llm.last_stats.generated_tokens == estimate_tokens("Sure.")  # no usage: estimated


def test_a_reply_that_is_not_streamed_is_read_whole() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [
            {"index": 0, "message": {"role": "assistant", "content": "All at once."},
             "finish_reason": "stop"}]})

    assert "".join(backend(handle).stream(MESSAGES, GenerationParams())) == "All at once."


def test_closing_the_stream_closes_the_response() -> None:
    closed: list[bool] = []

    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for i in range(1000):
                yield sse(delta(f"w{i} "))

        def close(self) -> None:
            closed.append(True)

    llm = backend(lambda r: httpx.Response(200, stream=Body()))
    stream = llm.stream(MESSAGES, GenerationParams())
    assert next(stream) == "w0 "
    stream.close()  # type: ignore[attr-defined]
    assert closed == [True]
    assert llm.last_stats is not None and llm.last_stats.stop_reason == "cancelled"


def test_an_error_event_mid_stream_is_a_model_error() -> None:
    llm = backend(streaming(delta("Hel"), {"error": {"message": "engine overloaded"}}))
    stream = llm.stream(MESSAGES, GenerationParams())
    assert next(stream) == "Hel"
    with pytest.raises(ModelError, match="engine overloaded"):
        next(stream)


# -- retries and errors -----------------------------------------------------------------


def test_connection_errors_are_retried_then_name_the_url() -> None:
    attempts: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    llm = backend(refuse, retries=2)
    with pytest.raises(ModelError, match=r"cannot connect to http://engine.test:8000/v1 .*"
                       r"Connection refused.* after 3 attempts"):
        list(llm.stream(MESSAGES, GenerationParams()))
    assert len(attempts) == 3


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError],
    ids=["refused", "connect-timeout", "closed-keepalive"],
)
def test_a_connection_that_comes_back_is_used(failure: type[httpx.TransportError]) -> None:
    attempts: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) < 3:
            raise failure("no", request=request)
        return streaming(delta("ok"), "[DONE]")(request)

    assert "".join(backend(flaky).stream(MESSAGES, GenerationParams())) == "ok"
    assert len(attempts) == 3


def test_server_errors_are_not_retried() -> None:
    attempts: list[int] = []

    def fail(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        return httpx.Response(500, json={"error": {"message": "CUDA out of memory"}})

    with pytest.raises(ModelError, match="HTTP 500: CUDA out of memory"):
        list(backend(fail).stream(MESSAGES, GenerationParams()))
    assert len(attempts) == 1


def test_a_read_timeout_is_one_clear_line() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ModelError, match="did not answer within 7 s"):
        list(backend(slow, timeout=7).stream(MESSAGES, GenerationParams()))


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_says_so(status: int) -> None:
    def deny(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": "Incorrect API key"}})

    with pytest.raises(ModelError, match="API key was refused.*COMPANION_OPENAI_KEY"):
        list(backend(deny, api_key="bad").stream(MESSAGES, GenerationParams()))
    with pytest.raises(ModelError, match="needs an API key and none was set"):
        backend(deny).check()


def test_an_unknown_model_lists_the_servers_models() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return models("llama3.2:latest", "qwen2.5:7b")
        return httpx.Response(
            404, json={"error": {"message": "model 'nope' not found", "code": "model_not_found"}}
        )

    with pytest.raises(ModelNotFoundError) as caught:
        list(backend(handle, "nope").stream(MESSAGES, GenerationParams()))
    assert caught.value.available == ["llama3.2:latest", "qwen2.5:7b"]
    with pytest.raises(ModelNotFoundError, match="available: llama3.2:latest, qwen2.5:7b"):
        backend(handle, "nope").check()
    backend(handle, "llama3.2").check()  # Ollama's implicit :latest


def test_a_wrong_path_says_to_check_the_url() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="404 page not found")

    with pytest.raises(ModelError, match=r"not found \(HTTP 404\): is the URL right"):
        list(backend(handle).stream(MESSAGES, GenerationParams()))
    with pytest.raises(ModelError, match="/models not found"):
        backend(handle).check()


def test_check_picks_the_only_model_and_its_window() -> None:
    llm = backend(lambda r: models("only-one", max_model_len=32768), model=None)
    llm.check()
    assert (llm.model, llm.name, llm.context_length) == ("only-one", "only-one", 32768)
    given = backend(lambda r: models("m", max_model_len=32768), context_length=2048)
    given.check()
    assert given.context_length == 2048  # the spec's ctx wins
    with pytest.raises(ModelError, match="serves 2 models; name one"):
        backend(lambda r: models("a", "b"), model=None).check()


def test_a_server_that_is_not_openai_compatible() -> None:
    with pytest.raises(ModelError, match="did not answer like an OpenAI-compatible server"):
        backend(lambda r: httpx.Response(200, text="<html>hello</html>")).check()
    with pytest.raises(ModelError, match="not JSON"):
        list(backend(streaming("<html>")).stream(MESSAGES, GenerationParams()))


# -- credentials in the URL ---------------------------------------------------------------

SECRET_URL = "http://user:s3cr%40t@127.0.0.1:9/v1"


def _no_secret(text: str) -> None:
    assert "s3cr" not in text and "user:" not in text, text


@pytest.mark.parametrize(
    "spec",
    [f"openai:{SECRET_URL}#m?ctx=big", f"openai:{SECRET_URL}#m?colour=red",
     f"openai:{SECRET_URL}?x=1#m", "openai:ftp://user:s3cr@h/v1#m", "openai:user:s3cr@h/v1",
     "openai:http://user:s3cr@[::1/v1#m", "openai:http://user:s3cr@h/v1#m?ctx=0"],
)
def test_credentials_never_appear_in_spec_errors(spec: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_spec(spec)
    _no_secret(str(caught.value))


def test_credentials_are_sent_as_basic_auth_and_never_shown(seen: list[httpx.Request]) -> None:
    spec = parse_spec(f"openai:{SECRET_URL}")
    assert spec.base_url == "http://127.0.0.1:9/v1" and spec.auth == ("user", "s3cr@t")
    _no_secret(repr(spec))
    llm = OpenAIChatLLM(
        SECRET_URL, transport=httpx.MockTransport(recording(seen, lambda r: models("m"))),
    )
    llm.check()
    assert seen[0].headers["authorization"] == "Basic dXNlcjpzM2NyQHQ="  # user:s3cr@t
    assert seen[0].url.userinfo == b""
    for shown in (llm.name, llm.base_url, repr(llm), repr(llm.__dict__)):
        _no_secret(shown)


@pytest.mark.parametrize("status", [401, 404, 500])
def test_credentials_never_appear_in_http_errors(status: int) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": "no"}})

    llm = OpenAIChatLLM(SECRET_URL, "m", transport=httpx.MockTransport(fail), backoff=0.0)
    with pytest.raises(ModelError) as caught:
        list(llm.stream(MESSAGES, GenerationParams()))
    _no_secret(str(caught.value))


def test_credentials_never_appear_when_the_server_is_unreachable() -> None:
    from companion.llm.loader import load_llm

    said: list[str] = []
    with pytest.raises(ModelError) as caught:
        load_llm(f"openai:{SECRET_URL}#m?retries=0&timeout=5", progress=said.append)
    _no_secret(str(caught.value))
    assert said and "***@127.0.0.1:9" in said[0]
    for line in said:
        _no_secret(line)


def test_redact_hides_every_urls_credentials() -> None:
    from companion.llm.openai_backend import redact

    assert redact(f"openai:{SECRET_URL}#m") == "openai:http://***@127.0.0.1:9/v1#m"
    assert redact("a https://u:p@x/ and http://v@y:1") == "a https://***@x/ and http://***@y:1"
    assert redact("http://x/v1?mail=a@b") == "http://x/v1?mail=a@b"


def test_doctor_does_not_show_the_credentials() -> None:
    from companion.cli.doctor import _model
    from companion.config import Config

    check = _model(Config(model=f"openai:{SECRET_URL}#m"))
    assert "***@127.0.0.1:9" in check.detail
    _no_secret(check.detail)


def test_the_config_repr_does_not_show_the_credentials() -> None:
    from companion.config import Config

    shown = repr(Config(model=f"openai:{SECRET_URL}#m"))
    assert "openai:http://***@127.0.0.1:9/v1#m" in shown and "persona='samantha'" in shown
    _no_secret(shown)
