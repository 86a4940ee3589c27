"""The platform as a separate service announces committed events on the bot workers' event bus
(Redis), so their consumers read the feed at once instead of on their next poll."""

from __future__ import annotations

import uuid
from pathlib import Path

from dbkit.bus import PLATFORM_EVENTS_TOPIC, RedisBus
from seal_platform import migrate
from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.events import publish
from seal_platform.settings import PlatformSettings
from tests.contract.test_event_bus import REDIS_URL
from tests.contract.test_event_bus import _require_redis as require_redis


async def test_a_commit_with_events_is_announced_and_one_without_is_not(tmp_path: Path) -> None:
    await require_redis()
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    settings = PlatformSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/platform.db",
        data_dir=tmp_path / "data",
        redis_url=REDIS_URL,
        bus_prefix=prefix,
    )
    await migrate.upgrade(settings.database_url)
    services = build_platform_services(settings)
    app = create_platform_app(services)
    worker_bus = RedisBus(REDIS_URL, prefix=prefix)  # a bot worker's bus
    await worker_bus.start()
    heard = worker_bus.subscribe(PLATFORM_EVENTS_TOPIC)
    try:
        async with app.router.lifespan_context(app):
            async with services.db.session() as session:
                publish(session, "account-1", "order.paid", {"order_id": "o-1"})
                await session.commit()
            notification = await heard.get(5)
            assert notification is not None
            assert notification.topic == PLATFORM_EVENTS_TOPIC
            async with services.db.session() as session:
                publish(session, "account-1", "order.paid", {"order_id": "o-2"})
                await session.rollback()
            assert await heard.get(1) is None  # nothing was committed, nothing is announced
    finally:
        heard.close()
        await worker_bus.close()
        await services.db.dispose()
