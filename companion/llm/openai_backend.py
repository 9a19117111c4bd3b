"""A remote engine behind the LLM protocol: any OpenAI-compatible chat server.

vLLM, the llama.cpp server, Ollama, LM Studio, ``companion serve`` itself, or
the OpenAI API: generation runs there, while memory, persona and the dialog
manager stay here. Name it with a model spec::

    openai:http://localhost:8000/v1#Qwen/Qwen2.5-7B-Instruct
    openai:http://localhost:11434/v1#llama3.2?ctx=8192&timeout=300
    openai:http://localhost:8080/v1              # the server's only model

The part after ``#`` is the model id (left out: the one model the server
lists); options after ``?``: ``ctx`` (the context window in tokens; default:
what the server reports as ``max_model_len``, else :data:`DEFAULT_CONTEXT`),
``timeout`` (seconds to wait for the next piece of a reply, default
:data:`DEFAULT_TIMEOUT`) and ``retries`` (connection attempts after the first,
default :data:`DEFAULT_RETRIES`). The API key comes from ``$COMPANION_OPENAI_KEY``,
else ``$OPENAI_API_KEY`` (none: no ``Authorization`` header is sent). A user name
and password in the URL (``http://user:secret@host/v1``) are sent as HTTP basic
auth and never shown: every message, name and ``repr`` has ``***`` in their place
(:func:`~companion.llm.openai_spec.redact`). Specs are parsed in
:mod:`companion.llm.openai_spec`.

Only connection failures are retried (with exponential backoff), including a
kept-alive connection the server closed before answering; an error the server
answered with, or one mid-reply, is not. Errors are one line naming what to
fix: the URL (nothing listening, not an OpenAI-compatible path), the key
(HTTP 401/403), or the model (:class:`ModelNotFoundError` with the models the
server lists).

Token counts are an estimate, since the remote tokenizer is out of reach:
UTF-8 bytes / 4 (:func:`estimate_tokens`), about right for English with BPE
tokenizers and on the safe side for other scripts. Stop sequences are sent to
the server (at most four, as the OpenAI API allows) and applied here as well,
so every one of them holds whatever the server does.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from companion.errors import ModelError, ModelNotFoundError
from companion.llm.openai_spec import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    PREFIX,
    OpenAISpec,
    parse_spec,
    redact,
    split_credentials,
)
from companion.llm.textstream import StopFilter
from companion.types import GenerationParams, Message

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_CONTEXT", "DEFAULT_RETRIES", "DEFAULT_TIMEOUT", "PREFIX", "OpenAIChatLLM",
    "OpenAISpec", "estimate_tokens", "open_openai_llm", "parse_spec", "redact",
]  # fmt: skip

#: Context window assumed when neither the spec nor the server gives one.
DEFAULT_CONTEXT = 4096
#: Seconds to wait for a connection.
CONNECT_TIMEOUT = 5.0
#: The first retry waits this long; each next one twice as long.
BACKOFF = 0.25
#: Stop sequences the OpenAI API accepts in one request (the rest apply locally).
MAX_REMOTE_STOPS = 4
KEY_VARIABLES = ("COMPANION_OPENAI_KEY", "OPENAI_API_KEY")

StopReason = Literal["eos", "stop", "length", "cancelled"]

def estimate_tokens(text: str) -> int:
    """Tokens ``text`` probably takes: its UTF-8 bytes / 4, rounded up."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / 4)


@dataclass(frozen=True, slots=True)
class RemoteStats:
    """What the last call in this thread did (the names match the local backend's)."""

    prompt_tokens: int
    generated_tokens: int
    stop_reason: StopReason


def api_key_from_env() -> str | None:
    """The key in ``$COMPANION_OPENAI_KEY`` or else ``$OPENAI_API_KEY``, if set."""
    return next((v for k in KEY_VARIABLES if (v := os.environ.get(k, "").strip())), None)


class OpenAIChatLLM:
    """An OpenAI-compatible ``/chat/completions`` endpoint as an :class:`~companion.llm.LLM`.

    Safe to share between threads (the server streams several replies at once
    through one instance). ``transport`` replaces the network, for tests
    (``httpx.MockTransport``). :meth:`check` asks the server for its models
    (and so checks the URL, the key and the model); :func:`open_openai_llm`
    builds and checks one from a spec. ``auth`` (user name, password) is sent as
    HTTP basic auth; credentials in ``base_url`` are taken out of it into ``auth``.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        auth: tuple[str, str] | None = None,
        context_length: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = BACKOFF,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise ModelError(
                "remote models need httpx: pip install 'companion[serve]'"
            ) from exc
        self._httpx = httpx
        base_url, in_url = split_credentials(base_url)
        auth = auth or in_url
        self.base_url = base_url.rstrip("/")
        self.model = model or ""
        self.name = model or self.base_url
        self._context_given = context_length
        self.context_length = context_length or DEFAULT_CONTEXT
        self.retries = retries
        self.backoff = backoff
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            base_url=self.base_url,
            auth=httpx.BasicAuth(*auth) if auth else None,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
            transport=transport,
        )
        self._timeout = timeout
        self._local = threading.local()

    # -- the LLM protocol -------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        if not self.model:
            self.check()
        return self._generate(self._body(messages, params), params)

    # -- beyond the protocol ------------------------------------------------

    @property
    def last_stats(self) -> RemoteStats | None:
        """How the last reply streamed in the calling thread ended, with its token counts."""
        stats: RemoteStats | None = getattr(self._local, "stats", None)
        return stats

    def models(self) -> list[dict[str, Any]]:
        """The server's ``/models`` list (raises :class:`ModelError` naming the problem)."""
        response = self._send("GET", "/models")
        if response.status_code != 200:
            raise self._http_error(response, what="/models")
        try:
            data = response.json()["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"{self.base_url}/models did not answer like an OpenAI-compatible server"
            ) from exc
        return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def check(self) -> None:
        """Check the URL, the key and the model against ``/models``; pick the model if
        none was named and the server has exactly one; take its context window when
        the server reports one (``max_model_len``) and the spec gave none."""
        listed = self.models()
        ids = [m["id"] for m in listed]
        if not self.model:
            if len(ids) != 1:
                raise ModelError(
                    f"{self.base_url} serves {len(ids)} models; name one with "
                    f"openai:{self.base_url}#MODEL (available: {', '.join(ids) or 'none'})"
                )
            self.model = self.name = ids[0]
        found = next((m for m in listed if m["id"] in (self.model, f"{self.model}:latest")), None)
        if found is None and ids:
            raise ModelNotFoundError(self.model, tried=[f"{self.base_url}/models"], available=ids)
        window = (found or {}).get("max_model_len")
        if self._context_given is None and isinstance(window, int) and window > 0:
            self.context_length = window

    def close(self) -> None:
        """Close the connections (idempotent)."""
        self._client.close()

    # -- internals ------------------------------------------------------------

    def _body(self, messages: Sequence[Message], params: GenerationParams) -> dict[str, Any]:
        turns = [{"role": m.role, "content": m.content} for m in messages]
        if params.prefill:
            # Servers that support assistant prefill (llama.cpp, Ollama) continue it.
            turns.append({"role": "assistant", "content": params.prefill})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        stops = [s for s in params.stop if s][:MAX_REMOTE_STOPS]
        if stops:
            body["stop"] = stops
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, read in full; connection failures retried."""
        with self._connect(method, path, **kwargs) as response:
            response.read()
            return response

    def _connect(
        self, method: str, path: str, **kwargs: Any
    ) -> contextlib.closing[httpx.Response]:
        """Open a streamed response, retrying only failures to connect."""
        httpx = self._httpx
        attempt = 0
        while True:
            request = self._client.build_request(method, path, **kwargs)
            try:
                return contextlib.closing(self._client.send(request, stream=True))
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                # Nothing was answered yet: not connected, or a kept-alive connection
                # the server had just closed. Safe to send again.
                if attempt >= self.retries:
                    raise ModelError(
                        f"cannot connect to {self.base_url} ({_reason(exc)}) after "
                        f"{attempt + 1} attempts: is the server running at that URL?"
                    ) from exc
            except httpx.TimeoutException as exc:
                raise ModelError(
                    f"{self.base_url} did not answer within {self._timeout:g} s"
                ) from exc
            except httpx.HTTPError as exc:
                raise ModelError(f"request to {self.base_url} failed: {_reason(exc)}") from exc
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def _generate(self, body: dict[str, Any], params: GenerationParams) -> Iterator[str]:
        httpx = self._httpx
        stops = StopFilter(params.stop)
        generated: int | None = None  # as the server counts (usage), else estimated
        estimated = 0
        prompt_tokens = sum(estimate_tokens(m["content"]) for m in body["messages"])
        reason: StopReason = "cancelled"
        self._local.stats = None
        try:
            with self._connect("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._http_error(response, what="/chat/completions")
                finish: str | None = None
                events = _sse_data(response.iter_lines())
                if response.headers.get("content-type", "").startswith("application/json"):
                    events = iter([response.read().decode("utf-8", "replace")])  # not streamed
                try:
                    for data in events:
                        event = _json_event(data, self.base_url)
                        usage = event.get("usage")
                        if isinstance(usage, dict):
                            prompt_tokens = int(usage.get("prompt_tokens") or prompt_tokens)
                            generated = int(usage.get("completion_tokens") or 0) or generated
                        for choice in event.get("choices") or ():
                            finish = choice.get("finish_reason") or finish
                            delta = choice.get("delta") or choice.get("message") or {}
                            text = stops.push(delta.get("content") or "")
                            estimated += estimate_tokens(text)
                            if text:
                                yield text
                            if stops.stopped:
                                reason = "stop"
                                return
                except httpx.TimeoutException as exc:
                    raise ModelError(
                        f"{self.base_url} stopped sending for {self._timeout:g} s mid-reply"
                    ) from exc
                except httpx.HTTPError as exc:
                    raise ModelError(
                        f"the connection to {self.base_url} broke mid-reply: {_reason(exc)}"
                    ) from exc
                tail = stops.flush()
                if tail:
                    yield tail
                reason = "length" if finish == "length" else "eos"
        finally:
            self._local.stats = RemoteStats(
                prompt_tokens, estimated if generated is None else generated, reason
            )

    def _http_error(self, response: httpx.Response, *, what: str) -> ModelError:
        status = response.status_code
        message = _error_message(response)
        where = f"{self.base_url}{what}"
        if status in (401, 403):
            sent = "Authorization" in self._client.headers or self._client.auth is not None
            hint = (
                "the API key was refused" if sent else "it needs an API key and none was set"
            )
            return ModelError(
                f"{where}: {hint} (HTTP {status}: {message}); "
                f"set {' or '.join(KEY_VARIABLES)}"
            )
        if status == 404:
            if _names_model(response, message, self.model):
                available: list[str] = []
                with contextlib.suppress(ModelError):
                    available = [m["id"] for m in self.models()]
                return ModelNotFoundError(
                    self.model, tried=[f"{where}: {message}"], available=available
                )
            return ModelError(
                f"{where} not found (HTTP 404): is the URL right? OpenAI-compatible "
                "servers usually answer under /v1"
            )
        return ModelError(f"{where} answered HTTP {status}: {message}")


def open_openai_llm(spec: str, *, api_key: str | None = None) -> OpenAIChatLLM:
    """Build the backend a spec names and :meth:`~OpenAIChatLLM.check` it (key from the env)."""
    parsed = parse_spec(spec)
    llm = OpenAIChatLLM(
        parsed.base_url,
        parsed.model,
        api_key=api_key if api_key is not None else api_key_from_env(),
        auth=parsed.auth,
        context_length=parsed.context_length,
        timeout=parsed.timeout,
        retries=parsed.retries,
    )
    try:
        llm.check()
    except BaseException:
        llm.close()
        raise
    return llm


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event, up to ``[DONE]``."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            payload, data = "\n".join(data), []
            if payload.strip() == "[DONE]":
                return
            yield payload
    if data and (payload := "\n".join(data)).strip() != "[DONE]":
        yield payload


def _json_event(data: str, url: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise ModelError(f"{url} sent a reply that is not JSON: {data[:80]!r}") from exc
    if not isinstance(event, dict):
        raise ModelError(f"{url} sent an unexpected event: {data[:80]!r}")
    error = event.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        raise ModelError(f"{url} failed mid-reply: {message}")
    return event


def _error_message(response: httpx.Response) -> str:
    """The server's error message: OpenAI's ``{"error": {"message"}}``, Ollama's
    ``{"error": "..."}``, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(body, dict) and isinstance(body.get("detail") or body.get("message"), str):
        return str(body.get("detail") or body.get("message"))
    return response.text.strip()[:200]


def _names_model(response: httpx.Response, message: str, model: str) -> bool:
    """Whether a 404 is about the model (rather than the URL)."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code == "model_not_found" or bool(model and model in message)


def _reason(exc: BaseException) -> str:
    text = redact(str(exc).strip())
    return text.splitlines()[0] if text else type(exc).__name__
