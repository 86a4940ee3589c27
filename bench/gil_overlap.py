"""``python -m bench.gil_overlap``: how much SQLite work a thread gets done beside a busy loop.

The embedded store runs SQLite in a writer thread. This measures what that thread achieves
while the main thread runs Python without pause (as the event loop does under load): rows
written per second alone, beside the busy main thread, and how much the main thread keeps of
its own pace. ``--switch-interval`` sets ``sys.setswitchinterval`` (default: Python's 5 ms).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path


def _writer(path: Path, stop: threading.Event, written: list[int]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    n = 0
    while not stop.is_set():
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(64):
            n += 1
            conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (str(n), "x" * 500))
            conn.execute("SELECT v FROM t WHERE k = ?", (str(n // 2),)).fetchone()
        conn.execute("COMMIT")
        written[0] += 64
    conn.close()


def _busy(seconds: float) -> int:
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for i in range(1000):
            n += i * 3 % 7
    return n


def measure(mode: str, seconds: float, path: Path) -> tuple[float, float]:
    """(main thread work per second, rows written per second), on a fresh database."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("DROP TABLE IF EXISTS t")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v TEXT)")
    conn.close()
    stop, written = threading.Event(), [0]
    thread = threading.Thread(target=_writer, args=(path, stop, written), daemon=True)
    if mode != "main":
        thread.start()
    started = time.perf_counter()
    if mode == "writer":
        time.sleep(seconds)
        work = 0
    else:
        work = _busy(seconds)
    elapsed = time.perf_counter() - started
    stop.set()
    if mode != "main":
        thread.join()
    return work / elapsed, written[0] / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gil_overlap", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--switch-interval", type=float, default=None)
    args = parser.parse_args(argv)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    with tempfile.TemporaryDirectory(prefix="sealbot-gil-") as tmp:
        path = Path(tmp) / "overlap.db"
        alone_work, _ = measure("main", args.seconds, path)
        _, alone_rows = measure("writer", args.seconds, path)
        both_work, both_rows = measure("both", args.seconds, path)
    print(f"switch interval {sys.getswitchinterval() * 1000:.2f} ms")
    print(f"writer thread alone:              {alone_rows:9.0f} rows/s")
    print(f"writer thread beside a busy loop: {both_rows:9.0f} rows/s")
    print(f"busy loop keeps {both_work / alone_work:.0%} of its own pace")


if __name__ == "__main__":
    main()
