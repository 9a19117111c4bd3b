"""``companion serve``: the companion behind an OpenAI-compatible HTTP API.

    from companion.server import CompanionServer, ServeSettings

    server = CompanionServer(llm, config, persona, home=home, settings=ServeSettings())
    uvicorn.run(server.app)

See :mod:`companion.server.app` for the endpoints. Needs the ``serve`` extra
(``pip install 'companion[serve]'``): Starlette, uvicorn, pydantic and httpx.
"""

from companion.server.app import CompanionServer, ServeSettings, create_app
from companion.server.auth import check_bind, is_loopback
from companion.server.background import BackgroundServer

__all__ = ["BackgroundServer", "CompanionServer", "ServeSettings", "check_bind", "create_app",
           "is_loopback"]
