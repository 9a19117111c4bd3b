"""Listening sockets, and uvicorn serving an app from a background thread.

:func:`listen` binds the socket first (port 0: any free port), so that the
address is known, and taken, before the server starts. :class:`BackgroundServer`
runs uvicorn in a thread, for tests, benchmarks, and programs that embed the
server::

    with BackgroundServer(server.app) as running:
        httpx.get(f"{running.url}/health")
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

from starlette.types import ASGIApp

from companion.errors import ConfigError


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (``port`` 0: a free one), or :class:`ConfigError`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}: {exc.strerror or exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a listening socket."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` from a thread; ``url`` once started."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        graceful_seconds: int = 5,
    ) -> None:
        import uvicorn

        self._sock = listen(host, port)
        self.url = url_of(self._sock)
        config = uvicorn.Config(
            app,
            log_level=log_level,
            log_config=None,  # leave the embedding program's logging alone
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=graceful_seconds,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server at {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop serving (in-flight replies get ``graceful_seconds`` to finish) and wait."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
