"""Load benchmark of ``companion serve``: N concurrent streaming clients.

    python bench/serve_load.py                                  # fake model, 50 streams
    python bench/serve_load.py --clients 50 --requests 4 --fake-delay 0.005
    python bench/serve_load.py --model smollm2-135m-instruct --clients 4 --max-tokens 16
    python bench/serve_load.py --url http://127.0.0.1:8000 --token T   # a running server

Unless ``--url`` is given, the server runs in a child process (this script with
``--serve``), on a fresh data directory, so that client and server do not share
an interpreter. Each client is its own user and sends ``--requests`` streamed
chat completions one after another; all clients start together. The model
generates one reply at a time, so requests queue: the target is no errors at
50 concurrent streams on the fake model.

Printed: the machine, requests/s, time to first token (client side, p50/p95/max),
whole-reply latency, errors by kind, and the server's own stage timings from
``/metrics`` (queue, recall, prompt, first token, total).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from companion.server.metrics import percentile


@dataclass
class Result:
    first_token: float | None = None
    total: float = 0.0
    chunks: int = 0
    error: str | None = None


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    wall: float = 0.0


async def one_request(
    client: httpx.AsyncClient, user: str, text: str, max_tokens: int
) -> Result:
    body = {
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "user": user,
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    result = Result()
    started = time.perf_counter()
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                await r.aread()
                result.error = f"HTTP {r.status_code}"
                return result
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    result.error = f"stream error: {event['error'].get('code')}"
                    break
                content = event["choices"][0]["delta"].get("content") if event["choices"] else ""
                if content:
                    if result.first_token is None:
                        result.first_token = time.perf_counter() - started
                    result.chunks += 1
    except httpx.HTTPError as exc:
        result.error = type(exc).__name__
    result.total = time.perf_counter() - started
    if result.error is None and result.chunks == 0:
        result.error = "empty reply"
    return result


async def load(url: str, token: str | None, clients: int, requests: int, max_tokens: int) -> Run:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    run = Run()
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=httpx.Timeout(600.0), limits=limits
    ) as client:

        async def one_client(i: int) -> list[Result]:
            out = []
            for k in range(requests):
                text = f"Hi, I'm user {i}. This is message {k}. I like jazz and long walks."
                out.append(await one_request(client, f"bench-{i}", text, max_tokens))
            return out

        started = time.perf_counter()
        per_client = await asyncio.gather(*(one_client(i) for i in range(clients)))
        run.wall = time.perf_counter() - started
    run.results = [r for rs in per_client for r in rs]
    return run


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:8.1f}"


def report(
    run: Run, server_metrics: dict[str, Any] | None, args: argparse.Namespace
) -> dict[str, Any]:
    ok = [r for r in run.results if r.error is None]
    errors = Counter(r.error for r in run.results if r.error is not None)
    firsts = [r.first_token for r in ok if r.first_token is not None]
    totals = [r.total for r in ok]
    load1, load5, _ = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average {load1:.2f} {load5:.2f}")
    print(f"model: {args.model}  clients: {args.clients}  requests/client: {args.requests}  "
          f"max_tokens: {args.max_tokens}" + (f"  fake delay: {args.fake_delay}s/piece"
                                               if args.model == "fake" else ""))
    print(f"requests: {len(run.results)}  ok: {len(ok)}  errors: {sum(errors.values())}"
          + (f" {dict(errors)}" if errors else ""))
    print(f"wall: {run.wall:.2f} s  requests/s: {len(run.results) / run.wall:.2f}  "
          f"pieces/s: {sum(r.chunks for r in ok) / run.wall:.1f}")
    print("client side (ms)        p50      p95      max")
    if firsts:
        print(f"  first token      {_ms(firsts, .5)} {_ms(firsts, .95)} {max(firsts) * 1000:8.1f}")
        print(f"  whole reply      {_ms(totals, .5)} {_ms(totals, .95)} {max(totals) * 1000:8.1f}")
    if server_metrics:
        print("server stages (ms)      p50      p95      max   (from /metrics)")
        for stage, s in server_metrics["stages"].items():
            print(f"  {stage:<15}{s['p50_ms']:9.1f}{s['p95_ms']:9.1f}{s['max_ms']:9.1f}")
    return {
        "model": args.model,
        "clients": args.clients,
        "requests": len(run.results),
        "errors": dict(errors),
        "wall_s": run.wall,
        "requests_per_s": len(run.results) / run.wall,
        "first_token_p50_ms": percentile(firsts, 0.5) * 1000,
        "first_token_p95_ms": percentile(firsts, 0.95) * 1000,
        "total_p50_ms": statistics.median(totals) * 1000 if totals else 0.0,
        "server": server_metrics,
    }


def serve(args: argparse.Namespace) -> None:
    """The child process: a server on a fresh data directory; prints its URL, then serves."""
    from companion.llm.fake import FakeLLM
    from companion.llm.loader import load_llm
    from companion.server import BackgroundServer, ServeSettings
    from companion.server.testing import open_test_server

    home = tempfile.mkdtemp(prefix="serve-load-")
    llm = (
        FakeLLM(delay=args.fake_delay)
        if args.model == "fake"
        else load_llm(args.model, threads=args.threads, progress=lambda line: None)
    )
    server = open_test_server(
        Path(home), llm=llm, user="bench",
        settings=ServeSettings(max_queue=max(256, args.clients * 2), max_users=args.clients + 8),
    )
    with BackgroundServer(server.app) as running:
        print(running.url, flush=True)
        sys.stdin.read()  # until the parent closes it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fake", help="fake (default) or a model spec")
    parser.add_argument("--clients", type=int, default=50, help="concurrent streams")
    parser.add_argument("--requests", type=int, default=2, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=32, dest="max_tokens")
    parser.add_argument("--fake-delay", type=float, default=0.002, dest="fake_delay",
                        help="seconds per piece on the fake model")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--url", help="an already running server (no child process)")
    parser.add_argument("--token", default=os.environ.get("COMPANION_SERVE_TOKEN"))
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return 0

    child = None
    url = args.url
    if url is None:
        argv = [sys.executable, __file__, "--serve", "--model", args.model,
                "--fake-delay", str(args.fake_delay), "--clients", str(args.clients)]
        if args.threads:
            argv += ["--threads", str(args.threads)]
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not re.match(r"http://", url):
            print("serve_load: the server did not start", file=sys.stderr)
            return 1
    try:
        run = asyncio.run(load(url, args.token, args.clients, args.requests, args.max_tokens))
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        metrics = httpx.get(f"{url}/metrics", headers=headers, timeout=30).json()
        figures = report(run, metrics, args)
    finally:
        if child is not None:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.close()
            child.wait(timeout=60)
            child.stdout.close()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)
    return 0 if not figures["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
