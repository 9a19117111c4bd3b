"""1,000 hostile inputs through the CLI and the server; counts the tracebacks.

    python bench/hostile.py                # 1,000 inputs, a fresh temporary data directory
    python bench/hostile.py --inputs 300 --seed 3

The inputs come from the hypothesis strategies of the hostile-input test suite
(tests/hostile_inputs.py): chat lines (as bytes on standard input), slash commands,
ids for ``companion memory``, user names, memory import files, character cards
(``persona import``), and chat completion requests (bodies and headers, through
the ASGI app on the fake model). The CLI runs in this process (``main(argv)``
with a scripted standard input); the chat lines are also piped, all at once, to
one real ``companion chat`` process.

A traceback is an exception that escapes ``main``, a ``Traceback`` on stderr,
or an HTTP 500. Also counted: output holding a raw escape or control byte, a
refusal that takes more than one line, and a chat that stopped answering after
a hostile line. Target: 0 tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from memory_common import machine  # noqa: E402

#: Share of the inputs each surface gets.
SHARES = {
    "chat line": 0.20,
    "slash command": 0.15,
    "memory id": 0.10,
    "user name": 0.05,
    "import file": 0.15,
    "card file": 0.15,
    "http request": 0.20,
}
SENTINEL = b"sentinel message"
ANSWER = "Mm, sentinel message. Tell me more about that? I'm listening."


class Tally:
    """Outcomes per surface."""

    def __init__(self) -> None:
        self.inputs: Counter[str] = Counter()
        self.tracebacks: Counter[str] = Counter()
        self.raw: Counter[str] = Counter()
        self.long_errors: Counter[str] = Counter()
        self.stalled: Counter[str] = Counter()
        self.examples: list[str] = []

    def note(self, kind: Counter[str], surface: str, example: object) -> None:
        kind[surface] += 1
        if len(self.examples) < 12:
            self.examples.append(f"{surface}: {example!r}"[:300])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="companion-hostile-"))
    os.environ["COMPANION_HOME"] = str(home)
    os.environ["COMPANION_EMBEDDER"] = "hash"
    os.environ.setdefault("HOME", str(home))
    print(machine())
    started = time.perf_counter()
    tally = Tally()
    lines: list[bytes] = []
    for surface, share in SHARES.items():
        count = max(1, round(args.inputs * share))
        _run_surface(surface, count, args.seed, tally, home, lines)
    piped = _pipe_to_a_real_chat(lines, home, tally)
    elapsed = time.perf_counter() - started
    total = sum(tally.inputs.values())
    print(f"inputs: {total} ({', '.join(f'{k} {v}' for k, v in tally.inputs.items())}); "
          f"{piped} chat lines also piped to one real chat process")
    print(f"tracebacks: {sum(tally.tracebacks.values())} {dict(tally.tracebacks)}")
    print(f"raw escapes printed: {sum(tally.raw.values())} {dict(tally.raw)}")
    print(f"refusals longer than one line: {sum(tally.long_errors.values())} "
          f"{dict(tally.long_errors)}")
    print(f"chat stopped answering after a line: {sum(tally.stalled.values())} "
          f"{dict(tally.stalled)}")
    for example in tally.examples:
        print(f"  {example}")
    print(f"time: {elapsed:.0f} s")
    return 0 if not tally.tracebacks else 1


def _run_surface(surface: str, count: int, seed: int, tally: Tally, home: Path,
                 lines: list[bytes]) -> None:
    from hostile_inputs import (
        NUMBERS,
        card_files,
        http_requests,
        messages,
        mutated,
        slash_commands,
        user_ids,
    )
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    run_one = _surface_runner(surface, tally, home, lines)
    strategy: Any = {
        "chat line": messages().map(lambda t: t.encode("utf-8", "surrogatepass"))
        | st.binary(max_size=40),
        "slash command": slash_commands(),
        "memory id": st.tuples(st.sampled_from(["forget", "pin", "edit", "show"]),
                               st.sampled_from(NUMBERS) | st.sampled_from(NUMBERS)
                               .map(lambda n: f"s{n}")),
        "user name": user_ids(),
        "import file": st.just(_an_export()).flatmap(mutated),
        "card file": card_files(),
        "http request": http_requests(),
    }[surface]

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(strategy)
    def each(value: Any) -> None:
        tally.inputs[surface] += 1
        try:
            run_one(value)
        except Exception:  # the point: count what would reach the user as a traceback
            tally.note(tally.tracebacks, surface, (value, traceback.format_exc(limit=-1)))

    each()


def _surface_runner(surface: str, tally: Tally, home: Path,
                    lines: list[bytes]) -> Callable[[Any], None]:
    from hostile_inputs import one_line_error, raw_markers, run_cli

    def check(value: object, status: int, out: str, err: str) -> None:
        if "Traceback" in err:
            tally.note(tally.tracebacks, surface, (value, err[-300:]))
        if raw_markers(out + err):
            tally.note(tally.raw, surface, (value, raw_markers(out + err)))
        if not one_line_error(status, err):
            tally.note(tally.long_errors, surface, (value, err[-300:]))

    def chat_line(line: bytes) -> None:
        line = line.replace(b"\n", b" ").replace(b"\r", b" ")
        lines.append(line)
        status, out, err = run_cli(["chat", "--model", "fake", "--no-greeting"],
                                   line + b"\n" + SENTINEL + b"\n")
        check(line, status, out, err)
        if ANSWER not in out:
            tally.note(tally.stalled, surface, (line, err[-200:]))

    def slash(command: str) -> None:
        raw = command.encode("utf-8", "surrogatepass")
        status, out, err = run_cli(["chat", "--model", "fake", "--no-greeting"],
                                   raw + b"\n" + SENTINEL + b"\n" + SENTINEL + b"\n")
        check(command, status, out, err)
        quits = command.strip().partition(" ")[0] in ("/quit", "/exit", "/bye")
        if not quits and ANSWER not in out:
            tally.note(tally.stalled, surface, (command, err[-200:]))

    def memory_id(value: tuple[str, str]) -> None:
        action, target = value
        argv = ["memory", action, target, *(["new text"] if action == "edit" else [])]
        check(value, *run_cli(argv))

    def user_name(user: str) -> None:
        user = user.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
        status, out, err = run_cli(["chat", "--model", "fake", "--no-greeting", "--user", user],
                                   SENTINEL + b"\n")
        check(user, status, out, err)
        check(user, *run_cli(["memory", "list", "--user", user]))

    def import_file(document: Any) -> None:
        path = home / "import.json"
        path.write_bytes(json.dumps(document, ensure_ascii=False)
                         .encode("utf-8", "surrogatepass"))
        status, out, err = run_cli(["memory", "import", str(path), "--user", "imp"])
        check(document, status, out, err)
        if status == 0:
            check(document, *run_cli(["memory", "list", "--user", "imp"]))

    def card_file(content: bytes) -> None:
        path = home / "card.png"
        path.write_bytes(content)
        status, out, err = run_cli(["persona", "import", str(path), "--name", "hostile"])
        check(content[:80], status, out, err)
        if status == 0:
            check(content[:80], *run_cli(["persona", "show", "hostile"]))

    client = _client(home) if surface == "http request" else None

    def http(request: tuple[dict[str, str], bytes]) -> None:
        assert client is not None
        headers, body = request
        sent = {k.encode(): v.encode("latin-1") for k, v in headers.items()}
        r = client.post("/v1/chat/completions", content=body, headers=sent)
        if r.status_code >= 500 and r.status_code != 503:
            tally.note(tally.tracebacks, surface, (headers, body[:100], r.status_code))

    runners: dict[str, Callable[[Any], None]] = {
        "chat line": chat_line, "slash command": slash, "memory id": memory_id,
        "user name": user_name, "import file": import_file, "card file": card_file,
        "http request": http,
    }
    return runners[surface]


def _client(home: Path) -> Any:
    from starlette.testclient import TestClient

    from companion.llm.fake import FakeLLM
    from companion.server.testing import open_test_server

    server = open_test_server(home / "server", llm=FakeLLM(), user="theo")
    client = TestClient(server.app, base_url="http://127.0.0.1:8000",
                        raise_server_exceptions=False)
    client.__enter__()  # runs the app's lifespan; the process ends with the bench
    return client


def _an_export() -> Any:
    from companion.testing import FakeLLM, open_test_companion

    with tempfile.TemporaryDirectory() as folder:
        c = open_test_companion(Path(folder), llm=FakeLLM(), user="source")
        try:
            for text in ("I love green tea and my cat is called Tom.", "I live in Paris."):
                c.say(text).text()
            c.new_session().text()
            return json.loads(json.dumps(c.export()))
        finally:
            c.close()


def _pipe_to_a_real_chat(lines: list[bytes], home: Path, tally: Tally) -> int:
    """Every chat line, then a sentinel, through one real process's standard input."""
    env = {**os.environ, "COMPANION_HOME": str(home / "piped")}
    script = b"".join(line + b"\n" for line in lines) + SENTINEL + b"\n"
    proc = subprocess.run(
        [sys.executable, "-m", "companion", "chat", "--model", "fake", "--no-greeting"],
        input=script, capture_output=True, env=env, timeout=600,
    )
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    if "Traceback" in err or proc.returncode != 0:
        tally.note(tally.tracebacks, "piped chat", (proc.returncode, err[-300:]))
    if any(ch in out + err for ch in ("\x1b", "\x9b", "\x9d", "\x07")):
        tally.note(tally.raw, "piped chat", "raw escape in the output")
    if ANSWER not in out:
        tally.note(tally.stalled, "piped chat", err[-200:])
    return len(lines)


if __name__ == "__main__":
    sys.exit(main())
