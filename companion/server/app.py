"""The HTTP face of the companion: an OpenAI-compatible API on Starlette.

    GET  /v1/models              the companion, as the one model served
    POST /v1/chat/completions    a turn: streamed (server-sent events) or not
    GET  /health                 "ok" (no token needed); with the token, the model and
                                 the median stage timings
    GET  /metrics                stage timings and counters (JSON; ?format=prometheus)
    GET  /v1/companion/agenda    the user's agenda; ``?due=1``: and the reminders due
                                 (see :mod:`companion.server.agenda`, which also puts
                                 due reminders into replies as ``companion_notices``)

Only programs may call it: requests from web pages and for foreign host names
are refused (:mod:`companion.server.guard`), and a completion's body must say
it is JSON (415 otherwise). Each completion is one turn of the user's
:class:`~companion.Companion` (see :mod:`companion.server.runner`): the same
turn as the terminal chat, with the same memory. Whose: the
``X-Companion-User`` header, else the body's ``user`` field, else the
configured user (your login name, as in the chat). Errors are OpenAI-style
objects (:mod:`companion.server.schema`); a client that goes away mid-reply
stops the generation and leaves the partial reply stored as interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from companion.config import Config
from companion.errors import CompanionError, InputError, StoreLockedError
from companion.llm.base import LLM
from companion.memory.codec import check_user_id
from companion.persona import Persona
from companion.server import agenda, schema
from companion.server.auth import TokenAuth, authorized
from companion.server.guard import RequestGuard
from companion.server.metrics import Metrics
from companion.server.plumbing import (
    Disconnect,
    check_json,
    first_event,
    header_safe,
    read_body,
    rest,
)
from companion.server.runner import Chunk, Done, Event, Failed, PendingTurn, TurnRequest, TurnRunner
from companion.server.schema import ApiError, ChatRequest
from companion.server.sessions import Clock, SessionPool

USER_HEADER = "x-companion-user"
SYSTEM_NOTE = "system messages are ignored: the persona's own prompt is used"


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """How the server runs (the companion's own settings are in :class:`Config`)."""

    #: Bearer token every request but ``/health`` must carry (``None``: no auth).
    token: str | None = None
    #: Largest request body, in bytes.
    max_body: int = schema.MAX_BODY_BYTES
    #: Turns generated at once (1 for a local model; more for a remote engine).
    workers: int = 1
    #: Turns that may wait for the model before requests are refused (503).
    max_queue: int = 256
    #: Users whose companion stays open at once.
    max_users: int = 64
    #: A user's companion idle this long is closed (their session ends).
    idle_seconds: float = 1800.0
    #: ``Host`` names answered besides loopback ones (``"*"``: any; needs a token).
    allowed_hosts: tuple[str, ...] = ()
    #: Web page origins allowed to call the API (``"*"``: any); none by default.
    allowed_origins: tuple[str, ...] = ()


class CompanionServer:
    """The server's state: the model, the users' companions, the turn queue, the metrics.

    ``app`` is the ASGI application; closing it (its lifespan's end, or
    :meth:`close`) stops the workers and closes the companions. The model is the
    caller's to close.
    """

    def __init__(
        self,
        llm: LLM,
        config: Config,
        persona: Persona,
        *,
        home: Path,
        settings: ServeSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.llm = llm
        self.config = config
        self.persona = persona
        self.settings = settings or ServeSettings()
        self.model_id = persona.name
        self.created = int(time.time())
        self.metrics = Metrics()
        self.pool = SessionPool(
            llm,
            config,
            persona,
            home=home,
            max_users=self.settings.max_users,
            idle_seconds=self.settings.idle_seconds,
            clock=clock,
        )
        self.runner = TurnRunner(
            self.pool,
            self.metrics,
            workers=self.settings.workers,
            max_queue=self.settings.max_queue,
        )
        self._closed = False
        self.app = Starlette(
            routes=[
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/v1/models/{model:path}", self.get_model, methods=["GET"]),
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/v1/companion/agenda", self.agenda_endpoint, methods=["GET"]),
            ],
            middleware=self._middleware(),
            exception_handlers={ApiError: self._api_error, HTTPException: self._http_error},
            lifespan=self._lifespan,
        )

    def _middleware(self) -> list[Middleware]:
        """Outermost first: where the request comes from, CORS for the origins
        allowed (answering their preflight requests), then the token."""
        settings = self.settings
        layers = [
            Middleware(
                RequestGuard,
                allowed_hosts=settings.allowed_hosts,
                allowed_origins=settings.allowed_origins,
                on_refuse=lambda: self.metrics.error(403),
            )
        ]
        if settings.allowed_origins:
            layers.append(
                Middleware(
                    CORSMiddleware,
                    allow_origins=list(settings.allowed_origins),
                    allow_methods=["GET", "POST"],
                    allow_headers=["authorization", "content-type", USER_HEADER],
                    expose_headers=["x-companion-user", "x-companion-note"],
                )
            )
        layers.append(
            Middleware(TokenAuth, token=settings.token, on_refuse=lambda: self.metrics.error(401))
        )
        return layers

    def close(self) -> None:
        """Stop the workers and close every user's companion (idempotent)."""
        if not self._closed:
            self._closed = True
            self.runner.close()
            self.pool.close()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(self.close)

    # -- endpoints ---------------------------------------------------------

    def _model_object(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "object": "model",
            "created": self.created,
            "owned_by": "companion",
            "max_model_len": self.llm.context_length,
        }

    async def list_models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [self._model_object()]})

    async def get_model(self, request: Request) -> Response:
        self._check_model(request.path_params["model"], param=None)
        return JSONResponse(self._model_object())

    async def health(self, request: Request) -> Response:
        token = self.settings.token
        if not token or not authorized(request.headers.get("authorization"), token):
            return JSONResponse({"status": "ok"})  # what it serves is for the token's holder
        stages = self.metrics.snapshot()["stages"]
        return JSONResponse(
            {
                "status": "ok",
                "model": self.model_id,
                "llm": self.llm.name,
                "users": len(self.pool),
                "queued": self.metrics.queued,
                "p50_ms": {stage: s["p50_ms"] for stage, s in stages.items()},
            }
        )

    async def metrics_endpoint(self, request: Request) -> Response:
        if request.query_params.get("format") == "prometheus":
            text = self.metrics.prometheus({"model": self.model_id})
            return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
        snapshot = self.metrics.snapshot()
        return JSONResponse({"model": self.model_id, "llm": self.llm.name, **snapshot})

    async def agenda_endpoint(self, request: Request) -> Response:
        self.metrics.count("requests")
        try:
            return await agenda.endpoint(request, self.pool, self.config.user)
        except CompanionError as exc:
            return self._failed(exc)

    async def chat_completions(self, request: Request) -> Response:
        self.metrics.count("requests")
        check_json(request)
        body = await read_body(request, self.settings.max_body)
        chat = schema.parse_chat_request(body)
        if chat.model is not None:
            self._check_model(chat.model, param="model")
        turn = TurnRequest(
            user=self._user(request, chat),
            text=chat.turn_text(),
            temperature=chat.temperature,
            top_p=chat.top_p,
            max_tokens=chat.reply_tokens,
            seed=chat.seed,
            stop=chat.stops,
            frequency_penalty=chat.frequency_penalty,
            presence_penalty=chat.presence_penalty,
        )
        headers = {"X-Companion-User": header_safe(turn.user)}
        if any(m.role in ("system", "developer") for m in chat.messages):
            headers["X-Companion-Note"] = SYSTEM_NOTE
        pending = self.runner.submit(turn)
        watch = Disconnect(request)
        streaming = False
        try:
            started = await watch.race(first_event(pending))
            if started is None:
                return self._gone(pending)
            notes, first = started
            if notes:
                told = [headers["X-Companion-Note"]] if "X-Companion-Note" in headers else []
                headers["X-Companion-Note"] = header_safe("; ".join([*told, *notes]))
            if isinstance(first, Failed):
                return self._failed(first.error)
            if not chat.stream:
                done = first if isinstance(first, Done) else await watch.race(rest(pending, first))
                if done is None:
                    return self._gone(pending)
                if isinstance(done, Failed):
                    return self._failed(done.error)
                return await self._completion(done, headers, turn.user)
            streaming = True
        finally:
            watch.stop()
            if not streaming:  # this request is over (or was cancelled): so is its turn
                pending.cancel()
        self.metrics.count("streams")
        return StreamingResponse(
            self._stream(pending, first, include_usage=chat.include_usage, user=turn.user),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- helpers -------------------------------------------------------------

    def _check_model(self, model: str, *, param: str | None) -> None:
        if model.casefold() not in (self.model_id.casefold(), self.llm.name.casefold()):
            raise ApiError(
                404,
                f"the model {model!r} does not exist; this server has {self.model_id!r}",
                param=param,
                code="model_not_found",
            )

    def _user(self, request: Request, chat: ChatRequest) -> str:
        header = request.headers.get(USER_HEADER)
        user = header if header is not None else chat.user
        if user is None:
            return self.config.user
        try:
            return check_user_id(user)
        except InputError as exc:
            param = "user" if header is None else USER_HEADER
            raise ApiError(400, str(exc), param=param, code="invalid_user") from exc

    async def _completion(self, done: Done, headers: dict[str, str], user: str) -> Response:
        body = schema.completion(
            schema.completion_id(),
            int(time.time()),
            self.model_id,
            done.text,
            done.finish_reason,
            schema.usage(done.prompt_tokens, done.completion_tokens),
        )
        notices, delivered = await asyncio.to_thread(agenda.with_reply, self.pool, user)
        if notices:
            body["companion_notices"] = agenda.notices_json(notices)
        return JSONResponse(body, headers=headers, background=BackgroundTask(delivered))

    async def _stream(
        self, pending: PendingTurn, first: Event, *, include_usage: bool, user: str
    ) -> AsyncIterator[bytes]:
        ident, created = schema.completion_id(), int(time.time())

        def piece(delta: dict[str, str], finish: str | None = None) -> bytes:
            return schema.sse(
                schema.chunk(ident, created, self.model_id, delta, finish_reason=finish)
            )

        finished = False
        delivered: Callable[[], None] = agenda.nothing
        try:
            yield piece({"role": "assistant", "content": ""})
            event = first
            while True:
                if isinstance(event, Chunk):
                    yield piece({"content": event.text})
                elif isinstance(event, Done):
                    notices, delivered = await asyncio.to_thread(agenda.with_reply, self.pool,
                                                                 user)
                    last = schema.chunk(ident, created, self.model_id, {},
                                        finish_reason=event.finish_reason)
                    if notices:
                        last["companion_notices"] = agenda.notices_json(notices)
                    yield schema.sse(last)
                    if include_usage:
                        use = schema.usage(event.prompt_tokens, event.completion_tokens)
                        yield schema.sse(schema.usage_chunk(ident, created, self.model_id, use))
                    break
                elif isinstance(event, Failed):
                    yield schema.sse(self._error(event.error).body())
                    break
                event = await pending.next()
            yield schema.sse("[DONE]")
            finished = True
            await asyncio.to_thread(delivered)
        finally:
            if not finished:  # the client went away: stop generating, keep what was said
                pending.cancel()
                self.metrics.error(499)

    def _gone(self, pending: PendingTurn) -> Response:
        pending.cancel()
        self.metrics.error(499)
        return Response(status_code=499)

    def _failed(self, error: Exception) -> Response:
        return self._respond(self._error(error))

    def _error(self, error: Exception) -> ApiError:
        if isinstance(error, ApiError):
            return error
        if isinstance(error, InputError):
            return ApiError(400, str(error), param="messages")
        if isinstance(error, StoreLockedError):
            return ApiError(503, str(error), type="server_error", code="store_locked")
        if isinstance(error, CompanionError):
            code = type(error).__name__.removesuffix("Error").lower() + "_error"
            return ApiError(500, str(error), type="server_error", code=code)
        return ApiError(500, "internal error (see the server's log)", type="server_error")

    def _respond(self, error: ApiError) -> Response:
        self.metrics.error(error.status)
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    async def _api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return self._respond(exc)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = f"{exc.detail}: {request.method} {request.url.path}"
        if exc.status_code == 404:
            return self._respond(ApiError(404, message, type="not_found_error"))
        return self._respond(ApiError(exc.status_code, message))


def create_app(
    llm: LLM,
    config: Config,
    persona: Persona,
    *,
    home: Path,
    settings: ServeSettings | None = None,
) -> Starlette:
    """The ASGI app serving ``persona`` on ``llm`` with the data in ``home``."""
    return CompanionServer(llm, config, persona, home=home, settings=settings).app
