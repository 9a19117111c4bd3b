"""Crash safety: a writer killed with SIGKILL loses nothing it reported as committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from companion.memory import SQLiteMemory, Store

WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path

from companion.memory import SQLiteMemory, Store

store = Store.open(Path(sys.argv[1]))
memory = SQLiteMemory(store)
session = store.start_session("crash", datetime.now(UTC))
i = 0
while True:
    with store.transaction():
        turn = store.add_turn(
            "crash", session.id, "user", f"I love song number {i}. " + "x" * 300,
            datetime.now(UTC),
        )
        memory.remember(turn)
    print(turn.id, flush=True)  # only after the commit returned
    i += 1
"""

#: How many committed turns to wait for before killing the writer.
COMMITTED = 150


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_write_keeps_every_committed_turn(tmp_path: Path) -> None:
    path = tmp_path / "companion.db"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        reported: list[int] = []
        while len(reported) < COMMITTED:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
        rest, errors = proc.communicate(timeout=30)
    assert len(reported) == COMMITTED, f"writer stopped early: {errors}"
    assert proc.returncode == -signal.SIGKILL
    # Whole lines printed after the first COMMITTED are committed turns too.
    reported += [int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n")]

    with Store.open(path) as store:
        conn = store.conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO facts_fts (facts_fts) VALUES ('integrity-check')")
        for turn_id in reported:
            turn = store.turn(turn_id)
            assert turn is not None, f"committed turn {turn_id} was lost"
            assert turn.content.startswith("I love song number")
        stored = store.count_turns("crash")
        assert stored in (len(reported), len(reported) + 1)  # + the one killed after commit
        facts = SQLiteMemory(store).items("crash")
        assert len(facts) == stored  # each turn's fact committed with it, never apart
