"""The agenda through ``companion serve``.

    GET /v1/companion/agenda?user=theo         the user's agenda (items still ahead)
    GET /v1/companion/agenda?user=theo&due=1   and the reminders due now, as ``notices``

Due reminders also come with the user's next reply: a completion (or the last
chunk of a streamed one) carries ``companion_notices``, a field OpenAI clients
ignore. Either way a reminder is claimed when the response is made and marked
shown once it has been sent (and stored as her turn); a response that never
reaches the client leaves it to be given again. The user is named as for a
completion: the ``X-Companion-User`` header, else ``user``, else the
configured user.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from companion.agenda.model import AgendaItem, Notice
from companion.errors import CompanionError, InputError
from companion.memory.codec import check_user_id
from companion.server.plumbing import header_safe
from companion.server.schema import ApiError

if TYPE_CHECKING:
    from companion.agenda.fire import Poller
    from companion.server.sessions import SessionPool, UserSession

log = logging.getLogger("companion.server")

USER_HEADER = "x-companion-user"

#: The ``due`` values a query may give.
_YES, _NO = ("1", "true", "yes"), ("", "0", "false", "no")


def item_json(item: AgendaItem) -> dict[str, Any]:
    """One agenda item as JSON (times ISO-8601, in the item's zone)."""
    return {
        "id": item.id,
        "what": item.what,
        "kind": item.kind,
        "when": item.when.date().isoformat() if item.all_day else item.when.isoformat(),
        "all_day": item.all_day,
        "rrule": item.rrule,
        "status": item.status,
        "snoozed_until": item.snoozed_until.isoformat() if item.snoozed_until else None,
    }


def notices_json(notices: list[Notice]) -> list[dict[str, Any]]:
    return [{"kind": n.kind, "text": n.text, "item_ids": list(n.item_ids)} for n in notices]


def session_poller(session: UserSession) -> Poller:
    """The poller of a user's open companion: reminders only (an API has no
    silence to break, so no check-ins)."""
    poller = session.companion.poller()
    poller.in_chat = False
    return poller


def claim_due(pool: SessionPool, user: str) -> tuple[list[Notice], Callable[[], None]]:
    """The user's due reminders, claimed, and what marks them given (call it once
    they were sent). Runs in a worker thread, one turn of the user at a time."""
    with pool.session(user) as session, session.lock:
        poller = session_poller(session)
        notices = poller.due_notices()

    def delivered() -> None:
        if notices:
            with session.lock:
                poller.delivered(notices)

    return notices, delivered


def nothing() -> None:
    pass


def with_reply(pool: SessionPool, user: str) -> tuple[list[Notice], Callable[[], None]]:
    """:func:`claim_due` for a reply: the reply goes out even when the agenda cannot
    be read (logged; the reminders wait for the next reply)."""
    try:
        return claim_due(pool, user)
    except CompanionError as exc:
        log.warning("the agenda of user %r could not be checked: %s", user, exc)
        return [], nothing


def agenda_query(pool: SessionPool, user: str, due: bool) -> tuple[dict[str, Any],
                                                                     Callable[[], None]]:
    """The body of ``GET /v1/companion/agenda`` and what to run once it was sent."""
    notices: list[Notice] = []
    delivered: Callable[[], None] = nothing
    if due:
        notices, delivered = claim_due(pool, user)
    with pool.session(user) as session, session.lock:
        items = session.companion.agenda()
    body: dict[str, Any] = {"object": "companion.agenda", "user": user,
                            "items": [item_json(i) for i in items]}
    if due:
        body["notices"] = notices_json(notices)
    return body, delivered


async def endpoint(request: Request, pool: SessionPool, default_user: str) -> Response:
    """``GET /v1/companion/agenda``; a reminder is marked shown once the body was sent."""
    user = query_user(request.headers.get(USER_HEADER), request.query_params.get("user"),
                      default_user)
    due = query_due(request.query_params.get("due"))
    body, delivered = await asyncio.to_thread(agenda_query, pool, user, due)
    return JSONResponse(body, headers={"X-Companion-User": header_safe(user)},
                        background=BackgroundTask(delivered))


def query_user(header: str | None, param: str | None, default: str) -> str:
    """Whose agenda: the header, else the query's ``user``, else ``default``."""
    user = header if header is not None else param
    if user is None:
        return default
    try:
        return check_user_id(user)
    except InputError as exc:
        raise ApiError(400, str(exc), param="user" if header is None else "x-companion-user",
                       code="invalid_user") from exc


def query_due(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ApiError(400, f"due must be 1 or 0, not {text[:40]!r}", param="due")
