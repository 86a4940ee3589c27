"""``sealbot rotate-keys``: re-encrypt stored files, sealed conversation answers and the
platform's encrypted fields under the current secret key.

Run it after setting a new ``SEALBOT_SECRET_KEY`` (and ``PLATFORM_SECRET_KEY``) with the old
ones kept in ``SEALBOT_OLD_SECRET_KEYS`` / ``PLATFORM_OLD_SECRET_KEYS``; the service keeps
running meanwhile (it reads both). Each file is replaced on its own, atomically, so a run
killed halfway (even ``kill -9``) leaves every file readable with the old or the new key, and
running it again finishes the work. Once it reports nothing left, the old secrets can be
dropped. It works on whichever shared store the settings choose (files, database, S3).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engine.ports import SystemClock
from bot.engine.secrets_box import SecretBox
from bot.engine.tables import conversations, outbox
from bot.media_storage import media_store_for
from bot.settings import Settings
from dbkit.engine import make_engine

_BATCH = 200


async def rotate_keys(settings: Settings) -> dict[str, int]:
    from bot.core import answers_box

    db = make_engine(settings.database_url)
    media = media_store_for(settings, db, SystemClock())
    try:
        counts = {"media": await media.rotate()}
        counts["sealed_answers"] = await reseal_answers(db, answers_box(settings))
    finally:
        await media.aclose()
        await db.dispose()
    if settings.platform_mode == "embedded":
        from bot.app import embedded_platform_services
        from seal_platform.field_crypto import rotate_fields
        from seal_platform.storage import ContentBlobStore

        services = await embedded_platform_services(settings)
        try:
            store = services.blob_store
            counts["platform_blobs"] = await store.rotate() if isinstance(store, ContentBlobStore) else 0
            counts["platform_ca"] = await services.ca_store.rotate() if services.ca_store is not None else 0
            # ID numbers, SO PINs, mailing addresses, invoice buyers: one compare-and-set per value.
            async with services.db.engine.connect() as conn:
                counts["platform_fields"] = await conn.run_sync(rotate_fields, services.field_cipher)
        finally:
            await services.aclose()
    return counts


async def reseal_answers(db: AsyncEngine, box: SecretBox) -> int:
    """Reseal the sealed answers of every conversation state and queued reply not under the
    current key; returns how many values were resealed.

    One row per UPDATE: a state only if its version is still the one read (a conversation that
    moved on meanwhile was written by the engine under the current key already), so a run
    killed at any point leaves every row readable with the old or the new key."""
    async with db.connect() as conn:
        if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table(conversations.name)):
            return 0  # a data directory the service never ran on: nothing sealed yet
    resealed = 0
    for table, column, guard in ((conversations, "state", "version"), (outbox, "payload", None)):
        after = 0
        while True:
            columns = [table.c.id, table.c[column], *([table.c[guard]] if guard else [])]
            async with db.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.select(*columns).where(table.c.id > after).order_by(table.c.id).limit(_BATCH)
                    )
                ).all()
            if not rows:
                break
            after = rows[-1][0]
            for row in rows:
                fresh, count = box.reseal(row[1])
                if not count:
                    continue
                where = [table.c.id == row[0], *([table.c[guard] == row[2]] if guard else [])]
                async with db.begin() as conn:
                    done = await conn.execute(sa.update(table).where(*where).values({column: fresh}))
                resealed += count if done.rowcount else 0
    return resealed
