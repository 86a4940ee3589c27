"""``sealbot rotate-keys``: re-encrypt stored files and the platform's encrypted fields under the
current secret key.

Run it after setting a new ``SEALBOT_SECRET_KEY`` (and ``PLATFORM_SECRET_KEY``) with the old
ones kept in ``SEALBOT_OLD_SECRET_KEYS`` / ``PLATFORM_OLD_SECRET_KEYS``; the service keeps
running meanwhile (it reads both). Each file is replaced atomically, so a run killed halfway
(even ``kill -9``) leaves every file readable with the old or the new key, and running it again
finishes the work. Once it reports nothing left, the old secrets can be dropped.
"""

from __future__ import annotations

from bot.engine.media import LocalMediaStore
from bot.settings import Settings


async def rotate_keys(settings: Settings) -> dict[str, int]:
    from bot.app import media_keyring

    counts = {"media": await LocalMediaStore(settings.data_dir / "media", media_keyring(settings)).rotate()}
    if settings.platform_mode == "embedded":
        from bot.app import embedded_platform_services
        from seal_platform.field_crypto import rotate_fields
        from seal_platform.storage import LocalBlobStore

        services = await embedded_platform_services(settings)
        try:
            store = services.blob_store
            counts["platform_blobs"] = await store.rotate() if isinstance(store, LocalBlobStore) else 0
            # ID numbers, SO PINs, mailing addresses, invoice buyers: one compare-and-set per value.
            async with services.db.engine.connect() as conn:
                counts["platform_fields"] = await conn.run_sync(rotate_fields, services.field_cipher)
        finally:
            await services.db.dispose()
    return counts
