"""The cost of encryption at rest: recall and turn time, encrypted over plain, in one run.

    python bench/encryption.py [--facts 2000] [--repeats 50]

1. The project (what a user feels): one store with ``--facts`` user turns (most
   give a fact) of one user, written through LongTermMemory.remember (rule extractor, the shipped
   hashing embedder so that the figures are the store's, FTS5's and the vector
   index's, not a model's), copied and encrypted with ``companion encrypt``'s
   code (SQLCipher 4, passphrase). Timed on both: the first open in the process
   (with a passphrase, PBKDF2 runs then, once), opening it again, the first
   recall (every vector read and decrypted), a warm recall (p50), and a turn,
   ``Companion.say`` with the fake model (p50: the turn is written with
   ``synchronous=FULL``, so fsync is in it).
2. The two candidate libraries on the same SQL (a facts table, its FTS5 index,
   one 384-float vector per fact): sqlite3 and sqlcipher3 (SQLCipher 4,
   AES-256-CBC + HMAC-SHA512), apsw plain and apsw-sqlite3mc (SQLite3 Multiple
   Ciphers, its default ChaCha20-Poly1305). Timed: a bm25 top-40 FTS5 query,
   reading every vector with a 256 KiB page cache (so every page is decrypted
   again), and one small committed write. The key is set before timing.

Ratios are encrypted / plain on the same machine in the same run. The machine
may be shared with other jobs: compare ratios, not absolute times, across runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from memory_common import machine, percentile

from companion.llm.fake import FakeLLM
from companion.memory import HashEmbedder, LongTermMemory, Store, crypto, keys
from companion.testing import FakeClock, open_test_companion

TEMPLATES = [
    "My {b} {n} loves {a}.",
    "I live in {n} now, near the {a}.",
    "I love {a} and {c}.",
    "I work at {n} on {a}.",
    "My favourite {b} is {c}.",
]
QUERIES = ["what does my sister love", "where do I live", "tell me about work", "jazz"]


def words(rng: random.Random, n: int = 4000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(n)]


def seed(home: Path, facts: int) -> int:
    rng = random.Random(7)
    vocab = words(rng)
    with Store.open(home / "companion.db") as store:
        memory = LongTermMemory(store, embedder=HashEmbedder())
        session = store.start_session("theo", datetime(2025, 1, 1, tzinfo=UTC))
        for start in range(0, facts, 250):
            with store.transaction():
                for i in range(start, min(facts, start + 250)):
                    text = rng.choice(TEMPLATES).format(
                        a=rng.choice(vocab), b=rng.choice(["sister", "friend", "dog"]),
                        c=rng.choice(vocab), n=rng.choice(vocab).title())
                    when = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
                    memory.remember(store.add_turn("theo", session.id, "user", text, when))
        return len(memory.items("theo"))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def project(home: Path, repeats: int) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    Store.open(home / "companion.db").close()
    out["first open (+ KDF)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = Store.open(home / "companion.db")
    out["open again"] = time.perf_counter() - t0
    memory = LongTermMemory(store, embedder=HashEmbedder())
    t0 = time.perf_counter()
    memory.recall("theo", QUERIES[0])
    out["first recall (cold)"] = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        memory.recall("theo", QUERIES[i % len(QUERIES)])
        times.append(time.perf_counter() - t)
    out["recall p50"] = percentile(times, 50)
    store.close()
    times = []
    with open_test_companion(home, llm=FakeLLM(), user="theo", clock=FakeClock()) as c:
        c.say("hello").text()  # warm: first turn loads the matrix
        for i in range(repeats):
            t = time.perf_counter()
            c.say(f"My sister loves {QUERIES[i % len(QUERIES)]}.").text()
            times.append(time.perf_counter() - t)
    out["turn p50 (say)"] = percentile(times, 50)
    return out


# -- the libraries on the same SQL --------------------------------------------------------


def library(conn: Any, rows: int, repeats: int, rng: random.Random) -> dict[str, float]:
    """conn: a connection with .execute(sql, params) whose key is already set."""
    vocab = words(rng, 2000)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE facts (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("CREATE VIRTUAL TABLE facts_fts USING fts5(text, content='facts', "
                 "content_rowid='id')")
    conn.execute("CREATE TABLE vec (id INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("BEGIN")
    for i in range(rows):
        text = " ".join(rng.choice(vocab) for _ in range(8))
        conn.execute("INSERT INTO facts (id, text) VALUES (?, ?)", (i + 1, text))
        conn.execute("INSERT INTO facts_fts (rowid, text) VALUES (?, ?)", (i + 1, text))
        conn.execute("INSERT INTO vec (id, v) VALUES (?, ?)", (i + 1, os.urandom(384 * 4)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA cache_size = -256")

    def timed(fn: Callable[[int], object]) -> float:
        times = []
        for i in range(repeats):
            t = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    return {
        "fts5 top-40": timed(lambda i: list(conn.execute(
            "SELECT rowid FROM facts_fts WHERE facts_fts MATCH ? ORDER BY rank LIMIT 40",
            (f'"{vocab[i]}" OR "{vocab[i + 1]}"',)))),
        "read all vectors": timed(lambda i: list(conn.execute("SELECT v FROM vec"))),
        "one write + fsync": timed(lambda i: conn.execute(
            "UPDATE facts SET text = ? WHERE id = ?", (vocab[i], i + 1))),
    }


def libraries(tmp: Path, rows: int, repeats: int) -> dict[str, dict[str, float]]:
    import sqlite3

    import apsw
    import sqlcipher3

    def sqlite3_conn(name: str, key: str | None) -> Any:
        mod: Any = sqlcipher3 if key else sqlite3
        conn = mod.connect(str(tmp / name), isolation_level=None)
        if key:
            conn.execute(f"PRAGMA key = \"x'{key}'\"")
        return conn

    def apsw_conn(name: str, key: str | None) -> Any:
        conn = apsw.Connection(str(tmp / name))
        if key:
            conn.execute(f"PRAGMA key = '{key}'")
        return conn

    key = os.urandom(32).hex()
    out = {}
    for label, make, name, k in [
        ("sqlite3 (plain)", sqlite3_conn, "a.db", None),
        ("sqlcipher3 (SQLCipher 4)", sqlite3_conn, "b.db", key),
        ("apsw (plain)", apsw_conn, "c.db", None),
        ("apsw-sqlite3mc (ChaCha20)", apsw_conn, "d.db", key),
    ]:
        conn = make(name, k)
        out[label] = library(conn, rows, repeats, random.Random(3))
        conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    crypto.require()
    print(machine())
    import sqlcipher3

    print(f"sqlite3 {sys.modules['sqlite3'].sqlite_version}, sqlcipher3 (SQLite "
          f"{sqlcipher3.sqlite_version}), repeats {args.repeats}; shared machine: "
          "compare ratios")
    os.environ.setdefault(keys.ENV, "bench passphrase")
    with tempfile.TemporaryDirectory() as tmp:
        plain, enc = Path(tmp) / "plain", Path(tmp) / "enc"
        plain.mkdir(mode=0o700)
        t = time.perf_counter()
        n = seed(plain, args.facts)
        print(f"\n1. the project: {args.facts} turns -> {n} facts of one user "
              f"(seeded in {time.perf_counter() - t:.1f} s)")
        shutil.copytree(plain, enc)
        t = time.perf_counter()
        crypto.encrypt(enc / "companion.db")
        print(f"   companion encrypt: {time.perf_counter() - t:.2f} s "
              f"({(enc / 'companion.db').stat().st_size / 1e6:.1f} MB)")
        a, b = project(plain, args.repeats), project(enc, args.repeats)
        print(f"   {'':24} {'plain':>11} {'encrypted':>11}   ratio")
        for k in a:
            print(f"   {k:24} {ms(a[k])} {ms(b[k])}   {b[k] / a[k]:5.2f}x")
        print(f"\n2. the libraries, same SQL, {args.facts} rows (key set before timing)")
        libs = libraries(Path(tmp), args.facts, args.repeats)
        names = list(libs)
        print(f"   {'':20}" + "".join(f"{n[:18]:>20}" for n in names))
        for op in libs[names[0]]:
            print(f"   {op:20}" + "".join(f"{ms(libs[n][op]):>20}" for n in names))
        for plain_name, enc_name in [(names[0], names[1]), (names[2], names[3])]:
            ratios = ", ".join(f"{op} {libs[enc_name][op] / libs[plain_name][op]:.2f}x"
                               for op in libs[plain_name])
            print(f"   {enc_name} / {plain_name}: {ratios}")


if __name__ == "__main__":
    main()
