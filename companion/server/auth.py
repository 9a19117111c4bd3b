"""Who may use the server: loopback by default, a bearer token for anything else.

:func:`check_bind` refuses to listen beyond loopback without a token;
:class:`TokenAuth` (ASGI middleware) answers 401 to a request without
``Authorization: Bearer <token>`` when a token is set. ``/health`` stays open so
that a supervisor can probe the server. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from companion.errors import ConfigError
from companion.server.schema import error_body

#: The environment variable holding the token (safer than ``--token``: not in ``ps``).
TOKEN_VARIABLE = "COMPANION_SERVE_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Raise :class:`ConfigError` for listening beyond loopback without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone who can reach it "
            f"could read her memories. Set {TOKEN_VARIABLE} (or --token), or use "
            "--host 127.0.0.1"
        )


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant time)."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    given = credentials.strip().encode("utf-8", "replace")
    return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode("utf-8"))


class TokenAuth:
    """ASGI middleware: every HTTP request but ``open_paths`` needs the bearer token.

    A refused request gets 401 with an OpenAI-style error before its body is read.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        *,
        open_paths: Iterable[str] = ("/health",),
        on_refuse: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.token = token or None
        self.open_paths = frozenset(open_paths)
        self.on_refuse = on_refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        header = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
        )
        if authorized(header, self.token):
            await self.app(scope, receive, send)
            return
        if self.on_refuse is not None:
            self.on_refuse()
        message = (
            "missing bearer token: send 'Authorization: Bearer <token>'"
            if header is None
            else "invalid bearer token"
        )
        response = JSONResponse(
            error_body(message, type="authentication_error", code="invalid_api_key"),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)
