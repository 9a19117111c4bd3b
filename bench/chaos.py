"""The kill test: N random SIGKILLs of a scripted ``companion chat --model fake``.

    python bench/chaos.py                 # 100 kills, a fresh temporary data directory
    python bench/chaos.py --kills 20 --seed 7 --messages 30
    python bench/chaos.py --keep /tmp/chaos-home   # keep the data directory to look at

Each round starts ``python -m companion chat --model fake --no-greeting`` on the
same data directory (``COMPANION_HOME``, the hashing embedder), pipes it a
script of messages that state facts (so every turn writes turns, facts, the
full-text and vector indexes), and kills it with SIGKILL at a random moment
between its start and the time a whole run takes. Then, with the chat dead:

- every reply the chat *confirmed* (its line printed in full, newline included)
  must be stored, with the user message it answers: otherwise it is **lost**;
- no turn is half-written: every stored user turn is a message that was sent,
  whole; every stored assistant turn is the whole reply to the user turn before
  it (what the fake model says to it), and none is marked interrupted (a killed
  process cannot have interrupted itself);
- ``PRAGMA integrity_check`` is ``ok``, no foreign key dangles, and the FTS5
  indexes pass their own integrity check.

A first, unkilled run is the baseline: the checker must find all of its replies
(if not, the checker is wrong and the run stops). Printed: the machine, the
baseline, then kills, turns confirmed, turns lost (target 0), half-written
turns, integrity failures, and replies printed in full whose line was not yet
ended when the kill came and that were not stored (not counted as confirmed).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_common import machine  # noqa: E402

from companion.llm.fake import FakeLLM  # noqa: E402
from companion.types import GenerationParams, Message  # noqa: E402

USER = "chaos"
TEMPLATES = (
    "I love green tea and song number {k}.",
    "My friend Amy{k} lives in Paris and she is a painter.",
    "I work as a letter writer, order {k} is done today.",
    "What do you think about the number {k}?",
    "My birthday is on the twelfth of March, reminder {k}.",
)


def script(round_no: int, count: int) -> list[str]:
    """The messages of one round, each unique across the whole run."""
    return [TEMPLATES[i % len(TEMPLATES)].format(k=round_no * 1000 + i) for i in range(count)]


def expected_reply(message: str) -> str:
    """What the fake model answers to ``message`` (its default responder, in full)."""
    return "".join(FakeLLM().stream([Message(role="user", content=message)], GenerationParams()))


@dataclass
class Round:
    """What one chat process printed before it ended or was killed."""

    sent: list[str]
    out: bytes = b""
    err: bytes = b""
    returncode: int = 0
    seconds: float = 0.0
    killed: bool = False
    replies: list[str] = field(default_factory=list)  # confirmed: the line ended
    partial: str | None = None  # the reply line being printed when it died

    def parse(self, name: str) -> None:
        text = self.out.decode("utf-8", "replace")
        lines = text.split("\n")
        tail = lines.pop()  # after the last newline: an unfinished line, or ""
        prefix = f"{name}: "
        self.replies = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
        self.partial = tail.removeprefix(prefix) if tail.startswith(prefix) else None


def run_chat(home: Path, messages: list[str], kill_after: float | None) -> Round:
    """One chat process on ``home``; killed after ``kill_after`` seconds (None: let it end)."""
    env = {**os.environ, "COMPANION_HOME": str(home), "COMPANION_EMBEDDER": "hash"}
    cmd = [sys.executable, "-m", "companion", "chat", "--model", "fake", "--user", USER,
           "--no-greeting"]
    result = Round(sent=messages)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    chunks: list[bytes] = []
    stdout = proc.stdout

    def drain() -> None:
        while block := os.read(stdout.fileno(), 65536):
            chunks.append(block)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    errors: list[bytes] = []
    stderr = proc.stderr
    err_reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    err_reader.start()
    proc.stdin.write("".join(m + "\n" for m in messages).encode("utf-8"))
    proc.stdin.flush()
    if kill_after is None:
        proc.stdin.close()  # end of input: the chat finishes the script and exits
        proc.wait(timeout=300)
    else:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            result.killed = True
            proc.wait(timeout=60)
        proc.stdin.close()
    reader.join(timeout=60)
    err_reader.join(timeout=60)
    result.seconds = time.perf_counter() - started
    result.out = b"".join(chunks)
    result.err = b"".join(errors)
    result.returncode = proc.returncode
    return result


@dataclass
class Check:
    """The store after a round, against what the chat printed."""

    confirmed: int = 0
    lost: int = 0
    half_written: int = 0
    integrity_failures: int = 0
    printed_not_stored: int = 0
    problems: list[str] = field(default_factory=list)


def check_store(db: Path, rnd: Round, sent_ever: set[str]) -> Check:
    check = Check()
    conn = sqlite3.connect(db, timeout=30)
    try:
        status = conn.execute("PRAGMA integrity_check").fetchone()[0]
        dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
        if status != "ok" or dangling:
            check.integrity_failures += 1
            check.problems.append(f"integrity: {status}, {len(dangling)} dangling keys")
        for table in ("turns_fts", "facts_fts"):
            try:
                conn.execute(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    check.integrity_failures += 1
                    check.problems.append(f"{table}: {exc}")
        conn.rollback()
        rows = conn.execute(
            "SELECT id, session_id, role, content, interrupted FROM turns WHERE user_id = ? "
            "ORDER BY id", (USER,)
        ).fetchall()
    finally:
        conn.close()

    answer: dict[str, str] = {}  # user message -> the stored reply that follows it
    previous: dict[int, tuple[str, str]] = {}  # session -> (role, content) of its last turn
    for _id, session, role, content, interrupted in rows:
        before = previous.get(session)
        if role == "user" and content not in sent_ever:
            check.half_written += 1
            check.problems.append(f"user turn {_id} is not a message sent: {content[:60]!r}")
        if role == "assistant":
            if interrupted or before is None or before[0] != "user":
                check.half_written += 1
                check.problems.append(f"assistant turn {_id} is interrupted or answers nothing")
            elif content != expected_reply(before[1]):
                check.half_written += 1
                check.problems.append(f"assistant turn {_id} is not a whole reply: {content!r}")
            else:
                answer[before[1]] = content
        previous[session] = (role, content)

    for message, printed in zip(rnd.sent, rnd.replies, strict=False):
        check.confirmed += 1
        if answer.get(message) != printed:
            check.lost += 1
            check.problems.append(f"confirmed reply to {message!r} is not stored")
    pending = len(rnd.replies)
    if rnd.partial is not None and pending < len(rnd.sent):
        message = rnd.sent[pending]
        if rnd.partial == expected_reply(message) and message not in answer:
            check.printed_not_stored += 1
    return check


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--messages", type=int, default=40, help="messages piped to each chat")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="data directory to keep (default: a temporary one)")
    ap.add_argument("--verbose", action="store_true", help="print every problem found")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    home = args.keep or Path(tempfile.mkdtemp(prefix="companion-chaos-"))
    home.mkdir(parents=True, exist_ok=True)
    db = home / "companion.db"
    name = _persona_name(home)
    print(machine())
    began = time.perf_counter()
    try:
        sent_ever: set[str] = set()
        base = run_chat(home, script(0, args.messages), None)
        base.parse(name)
        if base.returncode != 0 or not db.exists():
            print(f"the chat failed (exit status {base.returncode}):", file=sys.stderr)
            print(base.err.decode("utf-8", "replace")[-2000:], file=sys.stderr)
            return 1
        sent_ever.update(base.sent)
        found = check_store(db, base, sent_ever)
        print(f"baseline (no kill): {len(base.replies)}/{args.messages} replies printed, "
              f"{found.confirmed - found.lost} stored, {found.half_written} half-written, "
              f"integrity {'ok' if not found.integrity_failures else 'FAILED'}, "
              f"{base.seconds:.2f} s for the whole script")
        if len(base.replies) != args.messages or found.lost or found.half_written:
            print("the checker does not agree with an unkilled run; stopping", file=sys.stderr)
            for problem in found.problems[:10]:
                print(f"  {problem}", file=sys.stderr)
            return 1
        total = Check()
        exited = 0
        for round_no in range(1, args.kills + 1):
            rnd = run_chat(home, script(round_no, args.messages),
                           rng.uniform(0.0, base.seconds))
            exited += not rnd.killed
            rnd.parse(name)
            sent_ever.update(rnd.sent)
            found = check_store(db, rnd, sent_ever)
            total.confirmed += found.confirmed
            total.lost += found.lost
            total.half_written += found.half_written
            total.integrity_failures += found.integrity_failures
            total.printed_not_stored += found.printed_not_stored
            if args.verbose or found.lost or found.half_written or found.integrity_failures:
                for problem in found.problems:
                    print(f"  round {round_no}: {problem}")
        elapsed = time.perf_counter() - began
        print(f"kills: {args.kills - exited} (rounds {args.kills}, {exited} ended before the "
              f"kill), seed {args.seed}, {args.messages} messages piped per round")
        print(f"turns confirmed: {total.confirmed}")
        print(f"turns lost: {total.lost}")
        print(f"half-written turns: {total.half_written}")
        print(f"integrity failures: {total.integrity_failures}")
        print(f"replies printed in full, line not ended, not stored: {total.printed_not_stored}")
        print(f"time: {elapsed:.0f} s")
        return 0 if not (total.lost or total.half_written or total.integrity_failures) else 1
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


def _persona_name(home: Path) -> str:
    """The name the chat prints before each reply (the default persona's)."""
    from companion.config import load_config
    from companion.persona import load_persona

    return load_persona(load_config(home=home, user=USER).persona).name


if __name__ == "__main__":
    sys.exit(main())
