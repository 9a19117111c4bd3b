"""No web page may use the server: requests are checked for where they come from.

A server on loopback is still reachable from the user's browser: any page can
send it a "simple" request (a form post, ``fetch`` with ``mode: "no-cors"``),
and through DNS rebinding (a name of the attacker's that first points at their
server, then at 127.0.0.1) even read its answers. :class:`RequestGuard` (ASGI
middleware, outside everything else) refuses, with 403 and an OpenAI-style
error, before anything is read:

- a ``Host`` that is not a loopback name (``localhost``, 127.0.0.0/8, ``[::1]``)
  or one of ``allowed_hosts`` (``*``: any, which needs a token);
- a request from a browser page: an ``Origin`` header not in ``allowed_origins``
  (``*``: any), or, without one, ``Sec-Fetch-Site`` saying another site sent it.

Programs (the ``openai`` client, curl, front-ends that call the API from their
own server) send neither, and pass. The body's content type is checked by the
endpoint (:func:`companion.server.plumbing.check_json`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from companion.errors import ConfigError
from companion.server.auth import TOKEN_VARIABLE, is_loopback
from companion.server.schema import error_body

ANY = "*"
#: ``Sec-Fetch-Site`` values of a request the user made themselves (typed URL,
#: bookmark) or a page of this very server made.
_OWN_FETCH = frozenset({"none", "same-origin"})


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without port, lower case: ``[::1]:8000`` -> ``::1``."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        host = name
    return host.removesuffix(".")


def normal_origin(origin: str) -> str:
    """An origin as compared: lower case, without a trailing slash."""
    return origin.strip().lower().rstrip("/")


def check_hosts(allowed_hosts: Iterable[str], token: str | None) -> None:
    """Raise :class:`ConfigError` for answering any ``Host`` without a token."""
    if ANY in allowed_hosts and not token:
        raise ConfigError(
            "refusing to answer any Host name without a token: a web page could reach "
            f"her memories through DNS rebinding. Set {TOKEN_VARIABLE} (or --token), or "
            "list the names instead of '*'"
        )


class RequestGuard:
    """ASGI middleware: refuses foreign ``Host`` names and browser pages (403)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        on_refuse: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.hosts = frozenset(host_name(h) if h != ANY else ANY for h in allowed_hosts)
        self.origins = frozenset(normal_origin(o) for o in allowed_origins)
        self.on_refuse = on_refuse

    def host_allowed(self, host: str) -> bool:
        name = host_name(host)
        return ANY in self.hosts or name in self.hosts or is_loopback(name)

    def origin_allowed(self, origin: str) -> bool:
        return ANY in self.origins or normal_origin(origin) in self.origins

    def refusal(self, headers: dict[bytes, bytes]) -> tuple[str, str] | None:
        """Why a request with these headers is refused (message, code), or ``None``."""
        host = headers.get(b"host")
        if host is not None and not self.host_allowed(host.decode("latin-1")):
            name = host_name(host.decode("latin-1"))
            return (
                f"the Host {name!r} is not served here; add it with --allow-host "
                "(or allowed_hosts in config.toml) if you mean to reach the server by it",
                "host_not_allowed",
            )
        origin = headers.get(b"origin")
        if origin is not None:
            if self.origin_allowed(origin.decode("latin-1")):
                return None
            return (
                f"requests from web pages are refused (Origin "
                f"{origin.decode('latin-1')!r}); allow that origin with --allow-origin "
                "(or allowed_origins in config.toml)",
                "origin_not_allowed",
            )
        site = headers.get(b"sec-fetch-site", b"none").decode("latin-1").lower()
        if site not in _OWN_FETCH:
            return ("requests from other sites' web pages are refused", "origin_not_allowed")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key.lower(), value)
        refused = self.refusal(headers)
        if refused is None:
            await self.app(scope, receive, send)
            return
        if self.on_refuse is not None:
            self.on_refuse()
        message, code = refused
        response = JSONResponse(
            error_body(message, type="invalid_request_error", code=code), status_code=403
        )
        await response(scope, receive, send)
