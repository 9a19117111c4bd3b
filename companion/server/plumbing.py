"""Request plumbing of the server: checking a body's type, reading it within a
limit, noticing a client that goes away, and following a turn's events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from companion.server.runner import Done, Event, Failed, PendingTurn, Started
from companion.server.schema import ApiError

T = TypeVar("T")


def check_json(request: Request) -> None:
    """Refuse (415) a body that does not say it is JSON (``application/json``, UTF-8).

    A web page can post ``text/plain`` or a form to any address without asking;
    only a JSON content type makes the browser ask first (and be refused).
    """
    header = request.headers.get("content-type", "")
    media, *params = (part.strip().lower() for part in header.split(";"))
    charsets = [p.partition("=")[2].strip().strip('"') for p in params if p.startswith("charset=")]
    if media != "application/json" or any(c not in ("utf-8", "utf8") for c in charsets):
        shown = header_safe(header.strip()[:80]) or "none"
        raise ApiError(
            415,
            f"the body must be JSON, sent with 'Content-Type: application/json' (got {shown})",
            code="unsupported_media_type",
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) past ``limit`` bytes without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "invalid Content-Length header", code="invalid_request")
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise _too_large(size, limit)
        parts.append(part)
    return b"".join(parts)


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        f"the request body is too large ({size:,} bytes or more; the limit is {limit:,})",
        code="request_too_large",
    )


def header_safe(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


async def first_event(pending: PendingTurn) -> tuple[tuple[str, ...], Event]:
    """The turn's notes (e.g. that a long message was cut down for the model), and
    the first event that decides the response: a piece, the end, or a failure."""
    notes: tuple[str, ...] = ()
    while isinstance(event := await pending.next(), Started):
        notes = event.notes
    return notes, event


async def rest(pending: PendingTurn, event: Event) -> Done | Failed:
    """Read a reply to its end (for a response that is not streamed)."""
    while not isinstance(event, Done | Failed):
        event = await pending.next()
    return event


class Disconnect:
    """Watches for the client going away while a response is being prepared."""

    def __init__(self, request: Request) -> None:
        self._task = asyncio.ensure_future(self._wait(request))

    @staticmethod
    async def _wait(request: Request) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    async def race(self, work: Awaitable[T]) -> T | None:
        """``work``'s result, or ``None`` if the client disconnects first."""
        job = asyncio.ensure_future(work)
        await asyncio.wait({job, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if job.done():
            return job.result()
        job.cancel()
        return None

    def stop(self) -> None:
        self._task.cancel()

