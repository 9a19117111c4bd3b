"""A server on a fake model, for tests (the project's, and programs that embed it).

    from companion.server.testing import open_test_server, serving

    server = open_test_server(tmp_path, llm=FakeLLM(["Hello!"]))
    with serving(server) as url:
        openai.OpenAI(base_url=f"{url}/v1", api_key="-").chat.completions.create(...)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from companion.config import load_config
from companion.llm.base import LLM
from companion.llm.fake import FakeLLM
from companion.persona import load_persona
from companion.server.app import CompanionServer, ServeSettings
from companion.server.background import BackgroundServer


def open_test_server(
    home: Path,
    *,
    llm: LLM | None = None,
    user: str = "tester",
    settings: ServeSettings | None = None,
    clock: Callable[[], datetime] | None = None,
    **config: Any,
) -> CompanionServer:
    """A :class:`CompanionServer` storing under ``home``, on ``llm`` (a :class:`FakeLLM`
    by default), with ``user`` as its default user; ``config`` overrides settings."""
    conf = load_config(home=home, user=user, **config)
    persona = load_persona(conf.persona, user_dirs=[home / "personas"])
    return CompanionServer(
        llm if llm is not None else FakeLLM(), conf, persona, home=home, settings=settings,
        clock=clock,
    )


@contextmanager
def serving(server: CompanionServer) -> Iterator[str]:
    """Serve on a free loopback port from a thread; yields the base URL (no ``/v1``)."""
    with BackgroundServer(server.app) as running:
        yield running.url
