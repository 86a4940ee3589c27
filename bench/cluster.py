"""Web-chat throughput and latency of the multi-host topology, with 1 and with 3 bot workers.

``python -m bench.cluster --users 30 --messages 10`` starts, for each worker count asked
(``--workers 1,3``), the topology of ``bench.topology``: the platform as ``sealbot-platform
serve``, N ``sealbot serve`` workers on one fresh PostgreSQL database (on the server of
``--database``, dropped afterwards) and the round-robin proxy in front. Each user behaves as the
chat page does: a long poll of ``/chat/api/messages`` always open, and the next message sent
once every reply to the previous one has come through the poll. Every request goes to the next
worker in turn, so a user's message and the poll that sees its reply are served by different
workers.

Printed per worker count: messages/s, the time to handle a message (``/chat/api/send``,
p50/p99), the time until its replies are seen by the user's poll (p50/p99), replies lost (never
seen within 15 s) and replies seen twice, and how the proxy spread the requests. A reply not seen within 15 s counts as late
(what a user would call lost); a message refused by the service counts as failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.topology import Cluster

# Words the home screen answers without the platform: the bench measures the message path.
WORDS = ("你好", "菜单", "帮助", "取消", "菜单", "你好", "帮助", "菜单", "取消", "帮助")
REPLY_WAIT = 15.0


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Totals:
    handled: list[float] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)
    late: int = 0
    failed: int = 0
    seen_twice: int = 0
    messages: int = 0


class User:
    """One browser: a long poll always open, messages sent one after the other."""

    def __init__(self, base: str, index: int) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=40)
        self.index = index
        self.last_id = 0
        self.arrived: dict[int, float] = {}
        self.duplicates = 0
        self.changed = asyncio.Event()

    async def poll_forever(self) -> None:
        while True:
            try:
                got = await self.http.get("/chat/api/messages", params={"after": self.last_id})
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            if got.status_code != 200:
                await asyncio.sleep(0.5)
                continue
            now = time.perf_counter()
            for message in got.json()["messages"]:
                if message["id"] in self.arrived:
                    self.duplicates += 1
                self.arrived.setdefault(message["id"], now)
                self.last_id = max(self.last_id, message["id"])
            self.changed.set()

    async def run(self, messages: int, totals: Totals) -> None:
        await self.http.get("/chat")
        poller = asyncio.create_task(self.poll_forever())
        try:
            for n in range(messages):
                started = time.perf_counter()
                sent = await self.http.post(
                    "/chat/api/send",
                    json={"client_id": f"u{self.index:05d}m{n:04d}", "text": WORDS[n % len(WORDS)]},
                )
                handled = time.perf_counter()
                totals.messages += 1
                if sent.status_code != 200:
                    totals.failed += 1
                    continue
                totals.handled.append(handled - started)
                wanted = set(sent.json()["replies"])
                deadline = started + REPLY_WAIT
                while not wanted <= self.arrived.keys() and time.perf_counter() < deadline:
                    self.changed.clear()
                    try:
                        await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.perf_counter()))
                    except TimeoutError:
                        break
                if wanted <= self.arrived.keys():
                    totals.seen.append(max(self.arrived[i] for i in wanted) - started)
                else:
                    totals.late += len(wanted - self.arrived.keys())
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            totals.seen_twice += self.duplicates
            await self.http.aclose()


async def measure(
    workdir: Path, admin_url: str, workers: int, users: int, messages: int
) -> dict[str, object]:
    cluster = Cluster(workdir / f"workers-{workers}", admin_url, workers=workers)
    try:
        await cluster.start()
        # Warm-up: one conversation through every worker before timing.
        await User(cluster.proxy.url, 99999).run(len(cluster.bots), Totals())
        cluster.proxy.served.clear()
        totals = Totals()
        started = time.perf_counter()
        await asyncio.gather(*(User(cluster.proxy.url, i).run(messages, totals) for i in range(users)))
        elapsed = time.perf_counter() - started
        spread = Counter({url: cluster.proxy.served[url] for url in (bot.url for bot in cluster.bots)})
    finally:
        await cluster.stop()
    return {
        "workers": workers,
        "messages": totals.messages,
        "messages_per_s": totals.messages / elapsed if elapsed else 0.0,
        "handled_p50": statistics.median(totals.handled) if totals.handled else 0.0,
        "handled_p99": _percentile(totals.handled, 0.99),
        "seen_p50": statistics.median(totals.seen) if totals.seen else 0.0,
        "seen_p99": _percentile(totals.seen, 0.99),
        "late": totals.late,
        "failed": totals.failed,
        "seen_twice": totals.seen_twice,
        "spread": "/".join(str(count) for count in spread.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--messages", type=int, default=10, help="messages per user")
    parser.add_argument("--workers", default="1,3", help="worker counts to measure, comma-separated")
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "SEALBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL URL; fresh databases are created on its server and dropped afterwards",
    )
    args = parser.parse_args(argv)
    if args.database.startswith("postgresql://"):
        args.database = "postgresql+asyncpg://" + args.database.removeprefix("postgresql://")
    counts = [int(part) for part in args.workers.split(",") if part.strip()]
    with tempfile.TemporaryDirectory(prefix="sealbot-cluster-") as folder:
        results = [
            asyncio.run(measure(Path(folder), args.database, n, args.users, args.messages)) for n in counts
        ]
    print(f"bench.cluster  users={args.users} messages/user={args.messages} cores={os.cpu_count()}")
    print(
        "| workers | messages | messages/s | handled p50 / p99 | reply seen p50 / p99 | messages failed"
        " | replies not seen in 15 s | replies seen twice | requests per worker |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['workers']} | {r['messages']} | {r['messages_per_s']:.1f}"
            f" | {r['handled_p50']:.3f} s / {r['handled_p99']:.3f} s"
            f" | {r['seen_p50']:.3f} s / {r['seen_p99']:.3f} s | {r['failed']} | {r['late']} | {r['seen_twice']}"
            f" | {r['spread']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
