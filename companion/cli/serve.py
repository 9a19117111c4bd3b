"""``companion serve``: the companion behind an OpenAI-compatible HTTP API.

    companion serve                                  # http://127.0.0.1:8000/v1
    companion serve --port 0                         # any free port (printed)
    COMPANION_SERVE_TOKEN=... companion serve --host 0.0.0.0
    companion serve --model openai:http://gpu-box:8000/v1#Qwen/Qwen2.5-7B-Instruct

It listens on loopback unless told otherwise, and refuses to listen anywhere
else without a token. It answers only requests for a loopback name, the address
it listens on, or a name given with ``--allow-host`` (or ``allowed_hosts`` in
config.toml), and no web page unless its origin is given with ``--allow-origin``
(or ``allowed_origins``). The address is bound before the model loads, so a port
in use fails at once; one line on standard error says where it serves.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from companion.cli.options import config_from_args
from companion.config import Config
from companion.errors import ConfigError

DEFAULT_PORT = 8000
#: Addresses that mean "every interface": not a name a client would use.
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
#: Turns generated at once on a remote engine (which batches them), unless --parallel says.
REMOTE_WORKERS = 4


def add_serve_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    serve = sub.add_parser("serve", help="serve her over an OpenAI-compatible HTTP API")
    add_common(serve)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s; 0: a free one)"
    )
    serve.add_argument(
        "--token",
        help="bearer token every request must carry (better: $COMPANION_SERVE_TOKEN); "
        "required to listen beyond loopback",
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        dest="allow_host",
        metavar="NAME",
        help="a Host name to answer besides loopback ones and --host (repeatable; "
        "'*': any, which needs a token)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        dest="allow_origin",
        metavar="ORIGIN",
        help="a web page origin allowed to call the API, e.g. https://chat.example "
        "(repeatable; default: none, pages are refused)",
    )
    serve.add_argument("--temperature", type=float)
    serve.add_argument("--max-tokens", type=int, dest="max_tokens")
    serve.add_argument("--seed", type=int)
    serve.add_argument("--threads", type=int)
    serve.add_argument(
        "--parallel",
        type=int,
        help=f"replies generated at once (default: 1; {REMOTE_WORKERS} for openai: models)",
    )
    serve.add_argument(
        "--max-queue",
        type=int,
        default=256,
        dest="max_queue",
        help="requests that may wait for the model (default: %(default)s)",
    )
    serve.add_argument(
        "--max-users",
        type=int,
        default=64,
        dest="max_users",
        help="users whose companion stays open at once (default: %(default)s)",
    )
    serve.add_argument("--verbose", action="store_true", help="log every request")


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from companion.server import CompanionServer, ServeSettings, check_bind
        from companion.server.auth import TOKEN_VARIABLE
        from companion.server.background import listen, url_of
        from companion.server.guard import check_hosts
    except ImportError as exc:
        raise ConfigError(
            f"serving needs the serve extra ({exc.name} is missing): pip install 'companion[serve]'"
        ) from exc
    from companion.llm.loader import load_llm
    from companion.llm.openai_backend import OpenAIChatLLM
    from companion.memory import Store
    from companion.paths import data_dir
    from companion.persona import load_persona

    token = args.token or os.environ.get(TOKEN_VARIABLE) or None
    check_bind(args.host, token)
    for name in ("parallel", "max_queue", "max_users"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    config = config_from_args(args)
    hosts, origins = allowed_names(args, config)
    check_hosts(hosts, token)
    home = data_dir()
    Store.open(home / "companion.db").close()  # fail now, and unlock an encrypted one once
    persona = load_persona(config.persona, user_dirs=[home / "personas"])
    sock = listen(args.host, args.port)
    llm: Any = None
    try:
        llm = load_llm(
            config.model, threads=config.threads, progress=_progress, quantize=config.quantize,
            engine=config.engine, draft=config.draft,
        )
        remote = isinstance(llm, OpenAIChatLLM)
        settings = ServeSettings(
            token=token,
            workers=args.parallel or (REMOTE_WORKERS if remote else 1),
            max_queue=args.max_queue,
            max_users=args.max_users,
            allowed_hosts=hosts,
            allowed_origins=origins,
        )
        server = CompanionServer(llm, config, persona, home=home, settings=settings)
        auth = "token required" if token else "no token"
        _progress(
            f"companion: serving {persona.name} ({llm.name}) at {url_of(sock)}/v1 "
            f"({auth}; default user {config.user}); Ctrl-C to stop"
        )
        uvicorn_config = uvicorn.Config(
            server.app,
            log_level="info" if args.verbose else "warning",
            access_log=args.verbose,
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
        uvicorn.Server(uvicorn_config).run(sockets=[sock])
    finally:
        sock.close()
        close = getattr(llm, "close", None)
        if callable(close):
            close()
    return 0


def allowed_names(
    args: argparse.Namespace, config: Config
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Host names (besides loopback ones) and web page origins to answer: the
    config's and the options', and the address listened on when it names one."""
    hosts = [*config.allowed_hosts, *args.allow_host]
    if args.host.strip("[]") not in WILDCARDS:
        hosts.append(args.host)
    origins = [*config.allowed_origins, *args.allow_origin]
    return tuple(dict.fromkeys(hosts)), tuple(dict.fromkeys(origins))


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
