"""``python -m bench.platform`` runs end to end on a fresh PostgreSQL database with no errors
(a small size; CI does not bench). Its callers start at once after the platform announces its
port, as they do in a real run: a port announced before it listened refused them."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.platform import parse_args, report, run
from tests.contract.postgres import PG_URL, require_postgres


async def test_the_platform_benchmark_registers_and_logs_in_every_user_without_errors() -> None:
    await require_postgres()
    name = f"sealbot_bench_platform_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        database = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        args = parse_args(["--database", database, "--users", "20"])
        results, elapsed = await run(args)
        assert dict(results.errors) == {}
        assert results.registered == results.logged_in == 20
        assert "20 registered, 20 logged in, 0 errors" in report(args, results, elapsed)
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
