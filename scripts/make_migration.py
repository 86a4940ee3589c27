"""Regenerate a migration from the models: ``python scripts/make_migration.py bot|platform MESSAGE``.

Autogenerate compares the models with a database at head; this script uses a scratch SQLite file
upgraded to head, so it needs no running server.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection


def main() -> None:
    which, message = sys.argv[1], sys.argv[2]
    if which == "bot":
        from bot import migrate as module
        from bot.db import make_engine
    else:
        from seal_platform import migrate as module  # type: ignore[no-redef]
        from seal_platform.db import make_engine  # type: ignore[no-redef]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'scratch.db'}"

        async def run() -> None:
            await module.upgrade(url)
            engine = make_engine(url)
            async with engine.begin() as conn:
                await conn.run_sync(generate)
            await engine.dispose()

        def generate(connection: Connection) -> None:
            config = module.alembic_config(url)
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True)

        asyncio.run(run())


if __name__ == "__main__":
    main()
