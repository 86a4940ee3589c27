"""``python -m bench.lock_hold``: what one hold of a conversation lock costs, one after another.

Every message on several workers is handled under the conversation's cross-worker lock, so its
acquire and release are on the path of every message. This takes and releases the lock of one
conversation ``--holds`` times in a row and prints the wall and CPU time per hold: with nobody
else waiting, that is the backend's round trips and the client's work for them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time

from bot.engine.locks import PostgresAdvisoryLock
from bot.engine.messages import ConversationKey
from dbkit.engine import make_engine

PG_URL = os.environ.get("SEALBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

WARM_UP = 50


async def measure(url: str, holds: int) -> dict[str, float]:
    engine = make_engine(url)
    lock = PostgresAdvisoryLock(engine)
    key = ConversationKey("wechat", "bench", "lock-hold")
    try:
        for _ in range(WARM_UP):  # the pool's connection, prepared statements
            async with lock.hold(key):
                pass
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(holds):
            async with lock.hold(key):
                pass
        return {
            "holds": holds,
            "wall_us": (time.perf_counter() - started) / holds * 1e6,
            "cpu_us": (time.process_time() - cpu) / holds * 1e6,
        }
    finally:
        await lock.close()
        await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lock_hold", description=__doc__)
    parser.add_argument("--database", default=PG_URL, help="PostgreSQL URL (default SEALBOT_TEST_PG_URL)")
    parser.add_argument("--holds", type=int, default=2000, help="holds in a row (default 2000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    result = asyncio.run(measure(args.database, args.holds))
    print(
        f"PostgreSQL advisory lock, {result['holds']:.0f} holds in a row: "
        f"{result['wall_us']:.0f} us wall, {result['cpu_us']:.0f} us CPU per hold"
    )


if __name__ == "__main__":
    main()
