"""``python -m bench.instructions``: instructions per message, counted by valgrind.

Throughput on this shared 2-core machine moves by a tenth from one minute to the next, so a
change worth 3 % needs many runs in turns to show. An instruction count does not move with the
machine's load: each contender runs twice under callgrind (``valgrind --tool=callgrind``), once
with ``--small`` and once with ``--large`` users of ``bench.forms``' workload, and the
difference of the two totals over the difference of messages is its instructions per message.
Start-up, imports and set-up are the same in both runs and cancel out. Two runs of one tree
agree within 0.5 % (the hash seed changes dict and set layouts from run to run).

Contenders:

- ``engine``: ``bench.forms``' engine (the SQLite store, the outbox dispatcher, the collector
  set as the service sets it);
- ``engine-no-storage``: the same engine on the store that does no storage work
  (``bench.no_storage``, one of ``bench.store_cost``'s instruments), so that the gap between
  the two is what the store and the dispatcher cost.

python-telegram-bot is not a contender: its updates are built from JSON per message
(``Update.de_json``) before its clock starts, which a per-message count cannot leave out.
Compare a change with the code before it (started inside a worktree of it, ``cd <worktree> &&
PYTHONPATH=.``: ``-m`` puts the current directory ahead of ``PYTHONPATH``), not with
another framework. Each run takes 30-90 s under valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
from typing import Any

from bench import engine_forms
from bench.no_storage import run_without_storage
from bench.workload import scripts

CONTENDERS = ("engine", "engine-no-storage")
_COLLECTED = re.compile(r"Collected\s*:\s*([0-9]+)")


class ValgrindMissing(RuntimeError):
    pass


def _run_once(contender: str, users: int) -> dict[str, Any]:
    """What a child under valgrind runs: one contender, ``users`` users, 64 at a time."""
    user_scripts = scripts(users)
    if contender == "engine":
        return asyncio.run(engine_forms.run(user_scripts, concurrency=64))
    return asyncio.run(run_without_storage(user_scripts, concurrency=64, hop=None))


def instructions(contender: str, users: int) -> int:
    """Instructions the whole process of one run executed (``Collected`` of callgrind)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise ValgrindMissing("valgrind is not installed (apt-get install valgrind)")
    command = [
        valgrind,
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.instructions",
        "--child",
        contender,
        str(users),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own command line
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{contender} under valgrind failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1))


def per_message(contender: str, *, small: int, large: int) -> float:
    """Instructions per message: (large run - small run) / (large - small) messages."""
    messages = sum(len(s.messages) for s in scripts(large)) - sum(len(s.messages) for s in scripts(small))
    return (instructions(contender, large) - instructions(contender, small)) / messages


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="instructions per message under valgrind")
    parser.add_argument("--only", action="append", choices=CONTENDERS, help="run only these (repeatable)")
    parser.add_argument("--small", type=int, default=100, help="users of the smaller run")
    parser.add_argument("--large", type=int, default=400, help="users of the larger run")
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "USERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and args.large <= args.small:
        parser.error("--large must be more users than --small")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        _run_once(args.child[0], int(args.child[1]))
        return 0
    try:
        for contender in args.only or CONTENDERS:
            counted = per_message(contender, small=args.small, large=args.large)
            print(
                f"{contender:20s} {counted:12,.0f} instructions/message  ({args.small} and {args.large} users)"
            )
    except ValgrindMissing as exc:
        print(f"bench.instructions: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
