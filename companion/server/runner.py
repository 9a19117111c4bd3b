"""Running companion turns off the event loop, one model at a time, in arrival order.

The model generates one reply at a time, so turns wait in a first-in,
first-out queue (up to ``max_queue``; beyond it a request is refused with 503)
for one of ``workers`` threads (1 for a local model; a remote engine can take
several). A worker runs the very turn the terminal chat runs
(:meth:`Companion.say` and iterating its reply) and passes what happens to the
request's coroutine as events, through an asyncio queue:

    Started(notes)  the user's message is stored, generation begins
    Chunk(text)     a piece of the reply
    Done(...)       the reply ended (and is stored): text, finish reason, usage
    Failed(error)   the turn failed; a partial reply is stored as interrupted

:meth:`PendingTurn.cancel` (the client went away) stops the turn at the next
piece: the reply so far is stored as interrupted, exactly as Ctrl-C in the
chat. A turn cancelled while it waits is dropped without touching memory.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from companion.errors import CompanionError
from companion.llm.base import MESSAGE_OVERHEAD_TOKENS
from companion.server.metrics import Metrics
from companion.server.schema import ApiError
from companion.server.sessions import SessionPool, UserSession

log = logging.getLogger("companion.server")


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """One turn to run: whose, what they said, and the request's generation settings."""

    user: str
    text: str
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


@dataclass(frozen=True, slots=True)
class Started:
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    text: str
    interrupted: bool
    #: ``"stop"`` (the reply ended, or met a stop sequence) or ``"length"`` (max tokens).
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Failed:
    error: Exception


Event = Started | Chunk | Done | Failed


class PendingTurn:
    """A submitted turn: ``await next()`` for its events, ``cancel()`` to stop it."""

    def __init__(self, request: TurnRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.accepted = time.perf_counter()
        self._loop = loop
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._cancel = threading.Event()

    async def next(self) -> Event:
        return await self._events.get()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def post(self, event: Event) -> None:
        """Hand an event to the request's coroutine (from a worker thread)."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the event loop is gone: nobody is listening any more
            self._cancel.set()


class TurnRunner:
    """The queue of turns and the worker threads that run them."""

    def __init__(
        self, pool: SessionPool, metrics: Metrics, *, workers: int = 1, max_queue: int = 256
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.max_queue = max_queue
        self._jobs: queue.Queue[PendingTurn | None] = queue.Queue()
        self._running: set[PendingTurn] = set()
        self._running_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"companion-turn-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, request: TurnRequest) -> PendingTurn:
        """Queue a turn (from the event loop); raises :class:`ApiError` 503 when full."""
        if self._jobs.qsize() >= self.max_queue:
            raise ApiError(
                503,
                f"the server is busy ({self.max_queue} requests waiting); try again shortly",
                type="server_error",
                code="server_busy",
            )
        pending = PendingTurn(request, asyncio.get_running_loop())
        self.metrics.adjust(queued=1)
        self._jobs.put(pending)
        return pending

    def close(self, timeout: float = 10.0) -> None:
        """Cancel waiting turns, stop running ones at their next piece, join the workers."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel()
                self.metrics.adjust(queued=-1)
        with self._running_lock:
            for job in self._running:
                job.cancel()
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- worker side -------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self.metrics.adjust(queued=-1, running=1)
            with self._running_lock:
                self._running.add(job)
            try:
                self._run(job)
            finally:
                with self._running_lock:
                    self._running.discard(job)
                self.metrics.adjust(running=-1)

    def _run(self, job: PendingTurn) -> None:
        self.metrics.observe("queue", time.perf_counter() - job.accepted)
        if job.cancelled:  # the client left while waiting: nothing was stored
            self.metrics.count("interrupted")
            return
        try:
            with self.pool.session(job.request.user) as session, session.lock:
                job.post(self._turn(job, session))
        except CompanionError as exc:
            job.post(Failed(exc))
        except Exception as exc:  # the server's boundary: log it, keep serving
            log.exception("turn of user %r failed", job.request.user)
            job.post(Failed(exc))

    def _turn(self, job: PendingTurn, session: UserSession) -> Done:
        req = job.request
        session.memory.seconds = 0.0
        started = time.perf_counter()
        reply = session.companion.say(
            req.text, temperature=req.temperature, top_p=req.top_p, max_tokens=req.max_tokens,
            seed=req.seed, stop=req.stop, frequency_penalty=req.frequency_penalty,
            presence_penalty=req.presence_penalty,
        )  # fmt: skip
        recall = session.memory.seconds
        self.metrics.observe("recall", recall)
        self.metrics.observe("prompt", max(0.0, time.perf_counter() - started - recall))
        job.post(Started(reply.notes))
        pieces = iter(reply)  # a generator: closing it stops the reply
        first = True
        try:
            for piece in pieces:
                if first:
                    self.metrics.observe("first_token", time.perf_counter() - job.accepted)
                    first = False
                if job.cancelled:
                    break
                job.post(Chunk(piece))
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # a reply broken off is stored as interrupted
            if not reply.done:
                reply.interrupt()
        self.metrics.observe("total", time.perf_counter() - job.accepted)
        done = self._done(reply.text(), reply.interrupted, session)
        self.metrics.count("interrupted" if done.interrupted else "completed")
        self.metrics.count("tokens", done.completion_tokens)
        return done

    def _done(self, text: str, interrupted: bool, session: UserSession) -> Done:
        """Finish reason and token counts: the backend's own when it reports them
        (``last_stats``, as the local and the remote backends do), else counted."""
        stats: Any = getattr(self.pool.llm, "last_stats", None)
        prompt = getattr(stats, "prompt_tokens", None)
        completion = getattr(stats, "generated_tokens", None)
        reason = getattr(stats, "stop_reason", None)
        llm = session.llm
        if not isinstance(prompt, int) or not isinstance(completion, int):
            prompt = sum(llm.count_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS
                         for m in llm.messages)
            completion = llm.generated
            limit = llm.params.max_tokens if llm.params else session.companion.config.max_tokens
            reason = "length" if completion >= limit else "stop"
        return Done(
            text=text,
            interrupted=interrupted,
            finish_reason="length" if reason == "length" else "stop",
            prompt_tokens=prompt,
            completion_tokens=completion,
        )
