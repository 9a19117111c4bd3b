"""The OpenAI chat-completions wire format: requests in, completions and chunks out.

:func:`parse_chat_request` turns a request body into a :class:`ChatRequest` or
raises :class:`ApiError`, which the app sends as an OpenAI-style error object
(``{"error": {"message", "type", "param", "code"}}``). What is accepted:

- the standard OpenAI fields; ``temperature``, ``top_p``, ``max_tokens`` (or
  ``max_completion_tokens``), ``stop``, ``seed``, ``stream``,
  ``stream_options.include_usage``, ``user``, and ``frequency_penalty`` and
  ``presence_penalty`` (the sampler's additive penalties over the reply's
  tokens, on top of her own DRY and echo guards) are honoured; ``logit_bias``,
  ``metadata``, ``store``, ``service_tier`` and the like are
  accepted and ignored; what cannot be honoured (``n`` > 1, tools, logprobs,
  JSON output, images) is refused with 400 naming the field;
- any other top-level field is refused (400, listing them all);
- roles ``system``, ``developer``, ``user``, ``assistant``; content a string or a
  list of text parts.

The turn is the **last user message**, which must come after the last assistant
message: the companion keeps the conversation itself, so the earlier messages a
client resends are already in her memory, and the client's system messages are
ignored (her persona is her own).
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from companion.errors import InputError
from companion.text import clean_message

#: Largest request body accepted, in bytes (a longer one gets 413 unread).
MAX_BODY_BYTES = 1_000_000
#: Stop sequences one request may give (as the OpenAI API).
MAX_STOPS = 4
#: Deepest nesting of arrays and objects in a body (a chat request needs 5).
MAX_DEPTH = 32

ErrorType = Literal[
    "invalid_request_error", "authentication_error", "not_found_error", "server_error"
]


class ApiError(Exception):
    """An HTTP error answer, as OpenAI shapes it. Raised inside the server only:
    the app turns it into a response, and it never leaves :mod:`companion.server`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: ErrorType = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(
    message: str, *, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class ChatMessage(BaseModel):
    """One message of the client's conversation (extra keys, e.g. ``tool_calls`` on
    an assistant message, are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "user", "assistant"]
    content: Any = None
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _content(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValueError("must be a string or a list of content parts")
        for part in value:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise ValueError("each content part must be an object with a 'type'")
            if part["type"] != "text":
                raise ValueError(f"only text content is supported, not {part['type']!r}")
            if not isinstance(part.get("text"), str):
                raise ValueError("a text part needs a string 'text'")
        return value

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part["text"] for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool = False


class ChatRequest(BaseModel):
    """A ``POST /v1/chat/completions`` body."""

    model_config = ConfigDict(extra="forbid", strict=True)

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # Honoured for the turn (they override the config):
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    stop: Any = None
    seed: int | None = None
    # Only the values that change nothing are accepted:
    n: int | None = Field(None, ge=1, le=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=0)
    response_format: Any = None
    tools: list[Any] | None = Field(None, max_length=0)
    tool_choice: Any = None
    functions: list[Any] | None = Field(None, max_length=0)
    function_call: Any = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    # Accepted and ignored:
    logit_bias: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    modalities: list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise ValueError("must be a string or a list of strings")
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop sequences")
        return tuple(s for s in stops if s)

    @field_validator("logprobs")
    @classmethod
    def _logprobs(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("logprobs are not supported")
        return value

    @field_validator("response_format")
    @classmethod
    def _response_format(cls, value: Any) -> Any:
        if value is not None and value != {"type": "text"}:
            raise ValueError("only {'type': 'text'} is supported")
        return value

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _no_tools(cls, value: Any) -> Any:
        if value not in (None, "none"):
            raise ValueError("tools are not supported")
        return value

    @property
    def stops(self) -> tuple[str, ...]:
        stops: tuple[str, ...] = self.stop or ()
        return stops

    @property
    def reply_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def turn_text(self) -> str:
        """The message to answer: the last user message, after the last assistant one,
        cleaned as the companion cleans it (raises :class:`ApiError`)."""
        for index in range(len(self.messages) - 1, -1, -1):
            message = self.messages[index]
            if message.role == "assistant":
                break
            if message.role == "user":
                try:
                    return clean_message(message.text())
                except InputError as exc:
                    raise ApiError(400, str(exc), param=f"messages[{index}].content") from exc
        raise ApiError(
            400,
            "no user message to answer: the last user message must come after the last "
            "assistant message",
            param="messages",
        )


def parse_chat_request(body: bytes) -> ChatRequest:
    """Decode and validate a request body; raises :class:`ApiError` (400) saying what is wrong."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not UTF-8: {exc}", code="invalid_json") from exc
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_json")
    _check_values(data)
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from exc


def _too_deep() -> ApiError:
    return ApiError(
        400, f"the body is nested too deeply (more than {MAX_DEPTH} levels)", code="invalid_json"
    )


def _check_values(data: dict[str, Any]) -> None:
    """Refuse (400) nesting beyond :data:`MAX_DEPTH` and strings that are not valid
    Unicode: JSON's ``\\ud800`` escapes decode to lone surrogates, which no text
    can hold. Walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = value[exc.start : exc.end].encode("unicode_escape").decode("ascii")
                raise ApiError(
                    400,
                    f"the body holds a string that is not valid Unicode (a lone surrogate, {bad})",
                    code="invalid_json",
                ) from None
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


def _validation_error(exc: ValidationError) -> ApiError:
    errors = exc.errors(include_url=False)
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        return ApiError(
            400, f"unknown field(s): {names}", param=unknown[0], code="unknown_field"
        )
    first = errors[0]
    param = _param(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    return ApiError(400, f"{param}: {message}", param=param, code="invalid_value")


def _param(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "body"


# -- answers -------------------------------------------------------------------


def completion_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    id: str, created: int, model: str, text: str, finish_reason: str, use: dict[str, int]
) -> dict[str, Any]:
    """A whole ``chat.completion`` object."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": use,
    }


def chunk(
    id: str,
    created: int,
    model: str,
    delta: dict[str, str],
    *,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a streamed reply."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ],
    }


def usage_chunk(id: str, created: int, model: str, use: dict[str, int]) -> dict[str, Any]:
    """The last chunk when the client asked for ``stream_options.include_usage``."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": use,
    }


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event: ``data: <json>`` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()
