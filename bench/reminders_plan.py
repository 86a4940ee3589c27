"""Benchmark: planning expiry reminders over many seals in PostgreSQL.

Loads N seals (default 1,000,000; validity spread over five years, a few cancelled) into a
scratch schema with COPY, then times the two kinds of planning pass the scheduler makes, with
the platform's own page query (``seal_platform.api_reminders.expiring_query``) and planner:

- full: every seal that may be due a reminder now (the daily sweep and the first start);
- incremental: the seals whose reminder fell due in the last minute (every other pass);

and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of a first page and of a cursor page.

    .venv/bin/python -m bench.reminders_plan --seals 1000000 \\
        --url postgresql+asyncpg://postgres@127.0.0.1:5432/test

The scratch schema is dropped afterwards (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from scheduler.planner import ReminderSchedule
from seal_platform.accounts import Account
from seal_platform.api_reminders import EXPIRY_INDEX, encode_cursor, expiring_query
from seal_platform.companies import Company
from seal_platform.seals import Seal

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
PAGE = 500


@dataclass
class PassResult:
    name: str
    seconds: float
    seals_read: int
    reminders_due: int
    pages: int


@dataclass
class BenchReport:
    seals: int
    load_seconds: float
    passes: list[PassResult] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"seals: {self.seals:,} (loaded in {self.load_seconds:.1f}s)"]
        for p in self.passes:
            lines.append(
                f"{p.name:12} planning: {p.seconds * 1000:9.1f} ms, {p.seals_read:,} seals read in "
                f"{p.pages} page(s), {p.reminders_due:,} reminder(s) due"
            )
        for title, plan in self.plans.items():
            lines += ["", f"== EXPLAIN (ANALYZE, BUFFERS): {title}", plan]
        return "\n".join(lines)


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def load(url: str, schema: str, count: int, seed: int) -> float:
    """Create the platform's seal tables in ``schema`` and COPY ``count`` seals in."""
    rng = random.Random(seed)
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.begin() as conn:
            tables = [Account.__table__, Company.__table__, Seal.__table__]
            for table in tables:
                await conn.run_sync(lambda sync, t=table: t.create(sync))  # type: ignore[misc]
            await conn.run_sync(lambda sync: EXPIRY_INDEX.create(sync, checkfirst=True))
    finally:
        await engine.dispose()
    started = time.perf_counter()
    conn = await asyncpg.connect(_plain_dsn(url), server_settings={"search_path": schema})
    try:
        owners = max(1, count // 5)
        accounts = [str(uuid.uuid4()) for _ in range(owners)]
        await conn.copy_records_to_table(
            "accounts",
            records=[(a, f"1{n:010d}", "x", NOW, "none") for n, a in enumerate(accounts)],
            columns=["id", "phone", "password_hash", "created_at", "realname_status"],
        )
        await conn.copy_records_to_table(
            "companies",
            records=[
                (a, a, f"公司{n}", f"91{n:016d}", "张三", "x", "x", NOW, NOW) for n, a in enumerate(accounts)
            ],
            columns=[
                "id",
                "account_id",
                "name",
                "uscc",
                "legal_rep_name",
                "legal_rep_id_encrypted",
                "legal_rep_id_masked",
                "created_at",
                "updated_at",
            ],
        )
        span = 5 * 365 * 24 * 3600
        chunk = 100_000
        for start in range(0, count, chunk):
            records = []
            for n in range(start, min(count, start + chunk)):
                owner = accounts[rng.randrange(owners)]
                valid_to = NOW - timedelta(days=2 * 365) + timedelta(seconds=rng.randrange(span))
                roll = rng.random()
                status = "cancelled" if roll < 0.05 else "locked" if roll < 0.07 else "active"
                kind = "enterprise" if n % 2 else "personal"
                records.append(
                    (
                        str(uuid.uuid4()),
                        owner,
                        owner,
                        kind,
                        status,
                        f"公司{n}",
                        f"{n:013d}",
                        valid_to,
                        NOW,
                        NOW,
                    )
                )
            await conn.copy_records_to_table(
                "seals",
                records=records,
                columns=[
                    "id",
                    "account_id",
                    "company_id",
                    "kind",
                    "status",
                    "holder_name",
                    "seal_code",
                    "valid_to",
                    "created_at",
                    "updated_at",
                ],
            )
        await conn.execute("ANALYZE accounts; ANALYZE companies; ANALYZE seals")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _plan(
    conn: AsyncSession, schedule: ReminderSchedule, name: str, ranges: Sequence[tuple[datetime, datetime]]
) -> PassResult:
    started = time.perf_counter()
    read = due = pages = 0
    for lo, hi in ranges:
        after: tuple[datetime, str] | None = None
        while True:
            rows = (await conn.scalars(expiring_query(lo, hi, after, PAGE))).all()
            pages += 1
            read += len(rows)
            due += sum(
                1
                for seal in rows
                if seal.valid_to is not None and schedule.most_urgent_due(seal.valid_to, NOW) is not None
            )
            if len(rows) < PAGE:
                break
            last = rows[-1]
            assert last.valid_to is not None
            after = (last.valid_to, last.id)
    return PassResult(name, time.perf_counter() - started, read, due, pages)


async def _explain(conn: AsyncSession, query: sa.Select[Seal]) -> str:
    dialect: sa.Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    compiled = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    rows = await conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))
    return "\n".join(str(r[0]) for r in rows)


async def measure(url: str, schema: str, count: int, load_seconds: float) -> BenchReport:
    schedule = ReminderSchedule()
    report = BenchReport(seals=count, load_seconds=load_seconds)
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with AsyncSession(engine) as conn:
            full = [schedule.window(NOW)]
            incremental = schedule.crossing_ranges(NOW - timedelta(minutes=1), NOW)
            # Warm the cache once so both passes are measured alike.
            await _plan(conn, schedule, "warm-up", full)
            report.passes.append(await _plan(conn, schedule, "full", full))
            report.passes.append(await _plan(conn, schedule, "incremental", incremental))
            lo, hi = full[0]
            first = expiring_query(lo, hi, None, PAGE)
            report.plans["full pass, first page"] = await _explain(conn, first)
            middle = (await conn.scalars(expiring_query(lo, hi, None, PAGE).offset(PAGE * 10))).first()
            if middle is not None and middle.valid_to is not None:
                cursor_page = expiring_query(lo, hi, (middle.valid_to, middle.id), PAGE)
                report.plans[
                    f"full pass, page after {encode_cursor(middle.valid_to, middle.id)}"
                ] = await _explain(conn, cursor_page)
            ilo, ihi = incremental[0]
            report.plans["incremental pass, one crossing range"] = await _explain(
                conn, expiring_query(ilo, ihi, None, PAGE)
            )
    finally:
        await engine.dispose()
    return report


async def run(url: str, count: int, *, seed: int = 7, keep: bool = False) -> BenchReport:
    schema = f"bench_reminders_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain_dsn(url))
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            load_seconds = await load(url, schema, count, seed)
            return await measure(url, schema, count, load_seconds)
        finally:
            if not keep:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await admin.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seals", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the scratch schema")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.url, args.seals, seed=args.seed, keep=args.keep))
    print(report.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
