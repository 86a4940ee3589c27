"""``python -m bench.platform``: N users register and log in at once, over HTTP, on PostgreSQL.

The platform runs as its own process (uvicorn on 127.0.0.1, an ephemeral port), exactly the
service the bot calls in production; this process plays N bots at the same moment, each doing
what the registration flow does: ask for an SMS code, register with it, then log in with the
password. The SMS gateway is a file the platform appends each message to, read back here as a
phone would show it. Prints requests/s, latency p50/p95/p99 per call and overall, and errors
(any answer other than the expected 201, or no answer within ``--timeout``).

    python -m bench.platform --database postgresql+asyncpg://postgres@127.0.0.1:5432/sealbot_bench

The database is migrated to head first; each run uses fresh phone numbers, so runs can repeat
on the same database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from seal_platform.sms import SmsMessage

SERVICE_KEY = "bench-platform-service-key"
PASSWORD = "Bench-passw0rd!"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.platform", description=__doc__)
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "SEALBOT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/sealbot_bench"
        ),
        help="the platform's database URL (postgresql+asyncpg://...)",
    )
    parser.add_argument("--users", type=int, default=200, help="concurrent registrations (default 200)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a call may take (default 60)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sms-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---- the platform process ---------------------------------------------------------------------


class FileSmsGateway:
    """The bench's SMS gateway: one ``phone<TAB>code`` line per message, flushed at once."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8", buffering=1)

    async def send(self, message: SmsMessage) -> None:
        self._file.write(f"{message.phone}\t{message.params['code']}\n")


async def serve(args: argparse.Namespace) -> None:
    import uvicorn
    from pydantic import SecretStr

    from seal_platform import migrate
    from seal_platform.app import build_platform_services, create_platform_app
    from seal_platform.settings import PlatformSettings

    assert args.sms_file is not None
    data_dir = Path(tempfile.mkdtemp(prefix="sealbot-bench-platform-"))
    settings = PlatformSettings(
        _env_file=None,
        database_url=args.database,
        data_dir=data_dir,
        service_key=SERVICE_KEY,
        secret_key=SecretStr("bench-field-key-" + SERVICE_KEY),
        dev_pages=False,
    )
    await migrate.upgrade(settings.database_url)
    services = build_platform_services(settings, sms_provider=FileSmsGateway(args.sms_file))
    app = create_platform_app(services)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before the port is announced: a caller that comes before uvicorn accepts waits
    # in the backlog instead of being refused (a bound socket that does not listen refuses).
    sock.listen(4096)
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=4096, timeout_keep_alive=120)
    server = uvicorn.Server(config)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await server.serve(sockets=[sock])
    await services.db.dispose()


# ---- the callers --------------------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    registered: int = 0
    logged_in: int = 0


def _read_code(sms_file: Path, phone: str) -> str | None:
    for line in reversed(sms_file.read_text(encoding="utf-8").splitlines()):
        number, _, code = line.partition("\t")
        if number == phone:
            return code
    return None


async def _call(
    http: httpx.AsyncClient, results: Results, name: str, path: str, body: dict[str, str]
) -> dict[str, object] | None:
    started = time.perf_counter()
    try:
        response = await http.post(path, json=body)
    except httpx.HTTPError as exc:
        results.errors[f"{name}: {type(exc).__name__}"] += 1
        return None
    results.latencies.setdefault(name, []).append(time.perf_counter() - started)
    if response.status_code != 201:
        code = ""
        with contextlib.suppress(ValueError):
            code = str(response.json().get("code", ""))
        results.errors[f"{name}: HTTP {response.status_code} {code}".rstrip()] += 1
        return None
    answer: dict[str, object] = response.json()
    return answer


async def one_user(http: httpx.AsyncClient, results: Results, sms_file: Path, phone: str) -> None:
    sent = await _call(http, results, "sms-code", "/v1/sms-codes", {"phone": phone, "purpose": "register"})
    if sent is None:
        return
    code = _read_code(sms_file, phone)
    if code is None:
        results.errors["sms-code: no message"] += 1
        return
    body = {"phone": phone, "sms_code": code, "password": PASSWORD}
    if await _call(http, results, "register", "/v1/accounts", body) is None:
        return
    results.registered += 1
    if await _call(http, results, "login", "/v1/sessions", {"phone": phone, "password": PASSWORD}):
        results.logged_in += 1


async def _wait_healthy(http: httpx.AsyncClient) -> None:
    for _ in range(600):
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise SystemExit("the platform did not answer /healthz within 30 s")


async def run(args: argparse.Namespace) -> tuple[Results, float]:
    with tempfile.TemporaryDirectory(prefix="sealbot-bench-") as tmp:
        sms_file = Path(tmp) / "sms.txt"
        sms_file.touch()
        command = [sys.executable, "-m", "bench.platform", "--serve", "--database", args.database]
        server = await asyncio.create_subprocess_exec(
            *command, "--sms-file", str(sms_file), stdout=asyncio.subprocess.PIPE
        )
        try:
            assert server.stdout is not None
            line = (await server.stdout.readline()).decode()
            if not line.startswith("PORT "):
                raise SystemExit(f"the platform did not start (exit code {await server.wait()})")
            base_url = f"http://127.0.0.1:{int(line.split()[1])}"
            prefix = f"13{random.randint(0, 9)}{random.randint(0, 99):02d}"
            phones = [f"{prefix}{n:06d}" for n in random.sample(range(1_000_000), args.users)]
            results = Results()
            limits = httpx.Limits(max_connections=args.users, max_keepalive_connections=args.users)
            async with httpx.AsyncClient(
                base_url=base_url,
                headers={"Authorization": f"Bearer {SERVICE_KEY}"},
                timeout=args.timeout,
                limits=limits,
            ) as http:
                await _wait_healthy(http)  # the clock starts once the platform answers
                started = time.perf_counter()
                await asyncio.gather(*(one_user(http, results, sms_file, phone) for phone in phones))
                elapsed = time.perf_counter() - started
            return results, elapsed
        finally:
            server.terminate()
            await server.wait()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(args: argparse.Namespace, results: Results, elapsed: float) -> str:
    every = [latency for values in results.latencies.values() for latency in values]
    answered = len(every)
    errors = sum(results.errors.values())
    lines = [
        f"{args.users} concurrent registrations + logins, platform on {args.database.split('@')[-1]}",
        f"wall time {elapsed:.1f} s, {answered / elapsed:.1f} requests/s, "
        f"{results.registered} registered, {results.logged_in} logged in, {errors} errors",
        f"{'call':<10} {'n':>5} {'p50 s':>8} {'p95 s':>8} {'p99 s':>8} {'max s':>8}",
    ]
    for name in ("sms-code", "register", "login"):
        values = results.latencies.get(name, [])
        if values:
            lines.append(
                f"{name:<10} {len(values):>5} {statistics.median(values):>8.2f} {_quantile(values, 0.95):>8.2f} "
                f"{_quantile(values, 0.99):>8.2f} {max(values):>8.2f}"
            )
    if every:
        lines.append(
            f"{'all':<10} {answered:>5} {'':>8} {'':>8} {_quantile(every, 0.99):>8.2f} {max(every):>8.2f}"
        )
    for kind, count in sorted(results.errors.items()):
        lines.append(f"error: {kind} x{count}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.serve:
        asyncio.run(serve(args))
        return
    results, elapsed = asyncio.run(run(args))
    print(report(args, results, elapsed))


if __name__ == "__main__":
    main()
