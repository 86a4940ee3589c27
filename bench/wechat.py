"""The whole WeChat message path under load, played as WeChat's own server plays it.

``python -m bench.wechat --users 100 --messages 10`` starts the service (``sealbot serve``'s
app) as a subprocess on the embedded default (SQLite under a temporary directory, the platform
in process) with the WeChat channel enabled, and from this process:

- serves a fake WeChat API (``bot.channels.wechat.fake_server``) that issues the access token
  and records every customer-service (客服) message;
- plays WeChat's callback server: every request signed, half of the users in safe mode
  (AES-encrypted bodies), a 5 s timeout per try, up to 3 tries with the same MsgId, and a
  user's next message only after the previous one's reply was seen (a passive reply, or, after
  "success", the customer-service messages).

It prints requests/s, first-try p50/p95/p99, first tries over 5 s, replies never seen by a user
and replies seen twice. ``--workers N`` starts N service processes sharing ``--database``
(use PostgreSQL for N > 1) and spreads users over them.

A passive reply that arrives after WeChat's 5 s is not shown; a reply counts as seen twice when
it came both passively and through the customer-service API. Each message of the workload
produces one reply that fits a passive answer, so a user's customer-service messages are
attributed to the message that answered "success" before them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.callback_client import CallbackConnection, CallbackFailed
from bot.channels.local_server import free_port, serve_locally
from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.fake_server import create_app as create_fake_api
from tests.channels.wechat_server import Callback, WeChatServer

APPID = "wxbench0123456789"
SECRET = "bench-app-secret"
TOKEN = "bench-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WECHAT_TIMEOUT = 5.0  # WeChat waits this long for a passive reply, per try
TRIES = 3
# Words the home screen answers without the platform: the bench measures the message path.
WORDS = ("你好", "菜单", "帮助", "取消", "菜单", "你好", "帮助", "菜单", "取消", "帮助")
CS_WAIT = 20.0  # how long a user waits for customer-service messages after "success"
QUIET = 1.5  # seconds without a new customer-service message: the answer is complete
SETTLE = 7.0  # after the run: late customer-service messages still count (as seen twice)


@dataclass
class Outcome:
    first_try: float  # seconds; WECHAT_TIMEOUT or more when the first try timed out
    passive: bool  # a passive reply was shown
    via_cs: int = 0  # customer-service messages attributed to this message
    seen: bool = True


@dataclass
class Totals:
    outcomes: list[Outcome] = field(default_factory=list)
    requests: int = 0


async def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120.0
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the service exited with {process.returncode} before it was ready")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit("the service did not become ready in time")


@dataclass
class ServiceFigures:
    """What the services' ``/metrics`` say, added up over the workers (the longest pause: the
    longest of any)."""

    write_transactions: int = 0
    full_collections: int = 0
    young_collections: int = 0  # generations 0 and 1
    longest_full_pause: float = 0.0
    longest_young_pause: float = 0.0

    def __sub__(self, before: ServiceFigures) -> ServiceFigures:
        return ServiceFigures(
            self.write_transactions - before.write_transactions,
            self.full_collections - before.full_collections,
            self.young_collections - before.young_collections,
            self.longest_full_pause,
            self.longest_young_pause,
        )


async def _service_figures(client: httpx.AsyncClient, bases: list[str]) -> ServiceFigures:
    figures = ServiceFigures()
    for base in bases:
        text = (await client.get(f"{base}/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                full = sample.labels.get("generation") == "2"
                if sample.name == "sealbot_store_write_transactions_total":
                    figures.write_transactions += int(sample.value)
                elif sample.name == "sealbot_gc_pause_seconds_count":
                    if full:
                        figures.full_collections += int(sample.value)
                    else:
                        figures.young_collections += int(sample.value)
                elif sample.name == "sealbot_gc_longest_pause_seconds":
                    if full:
                        figures.longest_full_pause = max(figures.longest_full_pause, sample.value)
                    else:
                        figures.longest_young_pause = max(figures.longest_young_pause, sample.value)
    return figures


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the service processes (Linux /proc): what the service itself
    spent, whatever else the machine runs meanwhile."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@contextlib.asynccontextmanager
async def _services(args: argparse.Namespace, api_base: str, workdir: Path) -> AsyncIterator[list[str]]:
    """Starts ``--workers`` service processes, as ``sealbot serve`` runs them."""
    processes: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    database = args.database or f"sqlite+aiosqlite:///{workdir}/sealbot.db"
    try:
        for index in range(args.workers):
            port = free_port()
            env = {
                **os.environ,
                "SEALBOT_DATABASE_URL": database,
                "SEALBOT_DATA_DIR": str(workdir),
                "SEALBOT_PLATFORM_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/platform.db",
                "SEALBOT_HOST": "127.0.0.1",
                "SEALBOT_PORT": str(port),
                "SEALBOT_LOG_LEVEL": "WARNING",
                "SEALBOT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "WECHAT_ENABLED": "true",
                "WECHAT_APPID": APPID,
                "WECHAT_SECRET": SECRET,
                "WECHAT_TOKEN": TOKEN,
                "WECHAT_ENCODING_AES_KEY": AES_KEY,
                "WECHAT_API_BASE_URL": f"{api_base}/cgi-bin/",
                "WECHAT_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "TELEGRAM_ENABLED": "false",
            }
            log = (workdir / f"service-{index}.log").open("wb")
            # started before the load begins, with nothing else on the loop yet
            process = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-c", "from bot.cli import main; raise SystemExit(main(['serve']))"],
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            base = f"http://127.0.0.1:{port}"
            # the first worker migrates the databases; the others start after it
            await _wait_healthy(base, process)
            bases.append(base)
        args.pids = [p.pid for p in processes]
        yield bases
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class User:
    openid: str
    callbacks: list[Callback]


def _prepare(index: int, messages: int, words: list[str]) -> User:
    """A user's signed (half of them encrypted) callbacks, made before the clock starts: the
    load generator's crypto is not the service's latency."""
    openid = f"o{index:06d}{secrets.token_hex(4)}"
    server = WeChatServer(token=TOKEN, appid=APPID, aes_key=AES_KEY if index % 2 else None)
    callbacks = [
        server.sign(server.text(openid, words[number % len(words)], msg_id=index * 10_000 + number + 1))
        for number in range(messages)
    ]
    return User(openid, callbacks)


async def _user(user: User, base: str, fake: FakeWeChat, totals: Totals) -> None:
    openid = user.openid
    connection = CallbackConnection(base, seconds=WECHAT_TIMEOUT)
    try:
        for callback in user.callbacks:
            await _message(openid, callback, connection, fake, totals)
    finally:
        await connection.close()


async def _message(
    openid: str, callback: Callback, connection: CallbackConnection, fake: FakeWeChat, totals: Totals
) -> None:
    cs_before = len(fake.customer_messages(openid))
    first_try = 0.0
    passive: bool | None = None
    for attempt in range(TRIES):  # WeChat retries the same request
        started = time.monotonic()
        totals.requests += 1
        try:
            response = await connection.post("/wechat", callback.query, callback.body)
        except CallbackFailed:  # a timeout or a dropped connection: WeChat retries
            if attempt == 0:
                first_try = time.monotonic() - started
            continue
        elapsed = time.monotonic() - started
        if attempt == 0:
            first_try = elapsed
        if response.status != 200:
            continue  # WeChat retries any error
        # a passive reply (plain or encrypted XML) is shown; "success" is not
        passive = response.text not in ("success", "")
        break
    outcome = Outcome(first_try, bool(passive))
    if not passive:
        # "success", or three tries without an answer: only the customer-service API can
        # still reach the user
        deadline = time.monotonic() + CS_WAIT
        # the fake API records calls in this process; polling its list is the simplest watch
        while time.monotonic() < deadline and len(fake.customer_messages(openid)) == cs_before:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        # an answer of several messages arrives one by one (in order, per conversation): wait
        # until the user's chat has been quiet for a while before the next message
        count = len(fake.customer_messages(openid))
        while count > cs_before and time.monotonic() < deadline:
            await asyncio.sleep(QUIET)
            now_count = len(fake.customer_messages(openid))
            if now_count == count:
                break
            count = now_count
        outcome.via_cs = len(fake.customer_messages(openid)) - cs_before
        outcome.seen = outcome.via_cs > 0
    totals.outcomes.append(outcome)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[position]


async def run(args: argparse.Namespace) -> dict[str, float]:
    fake = FakeWeChat(APPID, SECRET)
    workdir = Path(tempfile.mkdtemp(prefix="bench-wechat-"))
    try:
        async with (
            serve_locally(create_fake_api(fake)) as api_base,
            _services(args, api_base, workdir) as bases,
        ):
            totals = Totals()
            limits = httpx.Limits(max_connections=args.users + 10, max_keepalive_connections=args.users + 10)
            users = [_prepare(i, args.messages, args.words.split(",")) for i in range(args.users)]
            async with httpx.AsyncClient(limits=limits) as client:
                figures_before = await _service_figures(client, bases)
                started = time.monotonic()
                cpu_before = _cpu_seconds(args.pids)
                await asyncio.gather(
                    *(_user(user, bases[i % len(bases)], fake, totals) for i, user in enumerate(users))
                )
                elapsed = time.monotonic() - started
                cpu = _cpu_seconds(args.pids) - cpu_before
                figures = await _service_figures(client, bases) - figures_before
            await asyncio.sleep(SETTLE)
            expected_cs = sum(o.via_cs for o in totals.outcomes)
            total_cs = len(fake.customer_messages())
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"service files kept in {workdir}")
    first = [o.first_try for o in totals.outcomes]
    return {
        "messages": len(totals.outcomes),
        "requests": totals.requests,
        "seconds": elapsed,
        "requests_per_s": totals.requests / elapsed if elapsed else 0.0,
        "p50": statistics.median(first) if first else 0.0,
        "p95": _percentile(first, 0.95),
        "p99": _percentile(first, 0.99),
        "over_5s": sum(1 for t in first if t >= WECHAT_TIMEOUT),
        "passive": sum(1 for o in totals.outcomes if o.passive),
        "via_cs": sum(1 for o in totals.outcomes if o.via_cs),
        "unseen": sum(1 for o in totals.outcomes if not o.seen),
        "seen_twice": max(0, total_cs - expected_cs),
        "cpu_ms_per_request": 1000 * cpu / totals.requests if totals.requests else 0.0,
        "transactions_per_message": figures.write_transactions / len(totals.outcomes)
        if totals.outcomes
        else 0.0,
        "full_collections": figures.full_collections,
        "young_collections": figures.young_collections,
        "longest_full_pause": figures.longest_full_pause,
        "longest_young_pause": figures.longest_young_pause,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--messages", type=int, default=10, help="messages per user")
    parser.add_argument("--database", default=None, help="bot database URL (default: SQLite, embedded)")
    parser.add_argument("--workers", type=int, default=1, help="service processes")
    parser.add_argument("--keep", action="store_true", help="keep the service's files and logs")
    parser.add_argument("--words", default=",".join(WORDS), help="what users send, in turn (comma-separated)")
    args = parser.parse_args(argv)
    if args.database and args.database.startswith("postgresql://"):
        args.database = "postgresql+asyncpg://" + args.database.removeprefix("postgresql://")
    result = asyncio.run(run(args))
    print(
        f"bench.wechat  users={args.users} messages/user={args.messages} workers={args.workers} "
        f"database={'sqlite (embedded)' if not args.database else args.database.split('@')[-1]}"
    )
    print(
        "| requests/s | first try p50 / p95 / p99 | first tries >= 5 s | passive | via 客服 | unseen"
        " | seen twice | service CPU per request | store write transactions per message |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {result['requests_per_s']:.0f} | {result['p50']:.3f} s / {result['p95']:.3f} s / {result['p99']:.3f} s"
        f" | {result['over_5s']} of {result['messages']} | {result['passive']} | {result['via_cs']}"
        f" | {result['unseen']} | {result['seen_twice']} | {result['cpu_ms_per_request']:.1f} ms"
        f" | {result['transactions_per_message']:.2f} |"
    )
    print(
        f"garbage collector while serving: {result['full_collections']:.0f} full collections"
        f" (longest pause {1000 * result['longest_full_pause']:.1f} ms),"
        f" {result['young_collections']:.0f} younger ones (longest {1000 * result['longest_young_pause']:.1f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
