"""Crash safety: SIGKILL a writer at random moments; every acknowledged write survives."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storeroom.safe import Safe

from .conftest import child_env

KILLS = 12

WRITER = r"""
import sys
from storeroom.safe import Safe

def value(i):
    return {"i": i, "blob": bytes([i % 251]) * ((i * 7919) % 50000)}

safe = Safe(sys.argv[1])
i = int(sys.argv[2])
out = sys.stdout
safe["warmup"] = 0
out.write("ready\n")
out.flush()
while True:
    if i % 5 == 0:
        with safe.transaction() as t:       # a pair: both or neither
            t[f"p{i}a"] = value(i)
            t[f"p{i}b"] = value(i)
        out.write(f"p{i}\n")
    else:
        safe[f"k{i}"] = value(i)            # acknowledged only after the write returned
        out.write(f"k{i}\n")
    out.flush()
    i += 1
"""


def value(i: int) -> dict[str, object]:
    return {"i": i, "blob": bytes([i % 251]) * ((i * 7919) % 50000)}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_never_loses_acknowledged_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rnd = random.Random(1234)
    acked: list[str] = []
    for round_ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(script), path, str(round_ * 1_000_000)],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(rnd.uniform(0.01, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        lines = rest.split("\n")[:-1]  # a final partial line is not an acknowledgement
        acked.extend(lines)

        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        with Safe(path) as safe:
            stored = dict(safe.items())
        for ack in acked:
            i = int(ack[1:])
            if ack[0] == "k":
                assert stored[ack] == value(i), ack
            else:
                assert stored[f"{ack}a"] == value(i) and stored[f"{ack}b"] == value(i), ack
        pairs = {k[:-1] for k in stored if k.startswith("p")}
        for p in pairs:  # transactions are all or nothing, acknowledged or not
            assert f"{p}a" in stored and f"{p}b" in stored, p
    assert len(acked) > KILLS  # the writers did get work done between kills
