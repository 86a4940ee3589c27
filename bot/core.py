"""The first phase of the composition root: the service's core.

``build_core`` migrates the databases and builds what every other part is built on: the
conversation store, the event bus, the platform (in this process, or the client of a remote
one), the engine, and the metrics plugged into them. ``bot.app`` builds the rest on a ``Core``
(support desk, channels, delivery, bridge, reminders) and then the ``Container``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import migrate
from bot.engine.i18n import Catalog
from bot.engine.locks import ConversationLocks, DistributedLock, PostgresAdvisoryLock, RedisLock
from bot.engine.media import SharedMediaStore
from bot.engine.ports import Clock
from bot.engine.runtime import Engine, EngineHooks, PassiveWindow
from bot.engine.secrets_box import SecretBox
from bot.engine.sqlite_store import SqliteConversationStore
from bot.engine.store import ConversationStore, SqlConversationStore
from bot.errors import ConfigError
from bot.media_storage import media_store_for
from bot.redaction.forget import forget_account
from bot.secure_page.links import PageLinks
from bot.settings import Settings, from_environment
from bot.telemetry import ServiceTelemetry
from dbkit.bus import EventBus, InProcessBus, PostgresBus, RedisBus
from dbkit.engine import make_engine
from handlers import catalogue
from handlers.services import HandlerServices
from platform_client.client import PlatformClient
from scheduler.jobs import TimedDuty
from scheduler.metrics import MetricsRegistry

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices
    from seal_platform.settings import PlatformSettings

ENGINE_LOCALES = Path(__file__).parent / "locales"
METRICS_SYNC_SECONDS = 15.0


@dataclass(frozen=True, kw_only=True, eq=False)
class Core:
    """The first phase of the composition: what every later part is built on (settings,
    databases, the store, the platform and its client, the engine). Other packages' wiring
    (``install_bridge``, ``install_support``) takes this, so they are built before the
    ``Container``, which is made last with every field set."""

    settings: Settings
    db: AsyncEngine
    store: ConversationStore
    engine: Engine
    platform: PlatformClient
    # tells the other workers what this one did (see dbkit.bus and docs/deploy.md)
    bus: EventBus
    # Prometheus metrics (/metrics), fed by the engine, the outbox, the locks, the platform client
    telemetry: ServiceTelemetry
    # the platform in this process (embedded mode); None when it is a separate service
    platform_app: FastAPI | None = None
    platform_services: PlatformServices | None = None
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)
    # called on stop, newest first (coroutines are awaited): what wiring opened beside the core
    closers: list[Callable[[], Any]] = field(default_factory=list)


def _distributed_lock(settings: Settings, db: AsyncEngine) -> DistributedLock | None:
    backend = settings.lock_backend
    if backend == "auto":
        backend = "postgres" if settings.database_url.startswith("postgresql") else "local"
    if backend == "postgres":
        return PostgresAdvisoryLock(db)
    if backend == "redis":
        assert settings.redis_url is not None
        return RedisLock(settings.redis_url)
    return None


def event_bus(settings: Settings) -> EventBus:
    """The bus from what the deployment has: ``SEALBOT_BUS_BACKEND`` (``auto``: Redis when
    ``SEALBOT_REDIS_URL`` is set, else PostgreSQL LISTEN/NOTIFY on a PostgreSQL database, else
    in-process, which is right for the one process of the embedded SQLite default)."""
    backend = settings.bus_backend
    if backend == "auto":
        if settings.redis_url:
            backend = "redis"
        elif settings.database_url.startswith("postgresql"):
            backend = "postgres"
        else:
            backend = "local"
    if backend == "redis":
        assert settings.redis_url is not None  # Settings.check
        return RedisBus(settings.redis_url, prefix=settings.bus_prefix)
    if backend == "postgres":
        return PostgresBus(settings.database_url)
    return InProcessBus()


def embedded_platform_settings(settings: Settings) -> PlatformSettings:
    """The in-process platform's settings: its own ``PLATFORM_`` variables, with what the
    service decides for it; what is wrong or left in demo mode in production is a ``ConfigError``."""
    from seal_platform.settings import PlatformSettings

    platform_settings = from_environment(
        PlatformSettings,
        database_url=settings.embedded_platform_database_url(),
        data_dir=settings.data_dir / "platform",
        service_key=settings.platform_service_key,
        public_base_url=settings.public_base_url + "/platform",
        production=settings.production,
    )
    try:
        platform_settings.check_production()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return platform_settings


async def embedded_platform_services(settings: Settings, clock: Clock | None = None) -> PlatformServices:
    """The in-process platform's services, its database migrated to head."""
    from seal_platform import migrate as platform_migrate
    from seal_platform.app import build_platform_services

    platform_settings = embedded_platform_settings(settings)
    from seal_platform.security import field_cipher_of

    # the key lets a data migration encrypt fields that earlier versions stored in clear
    await platform_migrate.upgrade(platform_settings.database_url, field_cipher_of(platform_settings))
    return build_platform_services(platform_settings, clock)


def answers_box(settings: Settings) -> SecretBox:
    """The key of sealed answers: the current secret seals, older ones still open."""
    return SecretBox(settings.secret_key.get_secret_value(), settings.old_secret_keys.get_secret_value())


async def _embedded_platform(settings: Settings, clock: Clock | None) -> tuple[PlatformServices, FastAPI]:
    from seal_platform.app import create_platform_app
    from seal_platform.console.bootstrap import ensure_bootstrap_admin

    services = await embedded_platform_services(settings, clock)
    await ensure_bootstrap_admin(services)
    return services, create_platform_app(services)


async def build_core(
    settings: Settings, *, clock: Clock, hooks: EngineHooks, passive_windows: list[PassiveWindow]
) -> Core:
    """Phase one: databases migrated, the store, the event bus, the platform (in this process
    or remote) and its client, and the engine on them, with the metrics plugged in."""
    telemetry = ServiceTelemetry()
    bus = event_bus(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    # On SQLite (the embedded default) group commit on the event loop's thread, a writer thread
    # for what must wait; on PostgreSQL the SQLAlchemy store, which many workers share.
    store: ConversationStore = (
        SqliteConversationStore(db) if db.dialect.name == "sqlite" else SqlConversationStore(db)
    )

    platform_app: FastAPI | None = None
    platform_services: PlatformServices | None = None
    closers: list[Callable[[], Any]] = []
    if settings.platform_mode == "embedded":
        platform_services, platform_app = await _embedded_platform(settings, clock)
        closers.append(platform_services.aclose)
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=platform_app)
        base_url = "http://platform.embedded"
    else:
        transport = httpx.AsyncHTTPTransport(retries=0)
        base_url = settings.platform_url
    platform = PlatformClient(
        base_url=base_url,
        service_key=settings.platform_service_key.get_secret_value(),
        transport=telemetry.transport(transport),
    )
    await platform.initialize()

    handler_services = HandlerServices(
        platform=platform,
        public_base_url=settings.public_base_url,
        sms_dev_page=(settings.public_base_url + "/platform/dev/sms")
        if platform_services is not None and platform_services.settings.dev_pages
        else None,
        password_page=page_links(settings).url,
        forget_account=functools.partial(forget_account, store),
        export_ttl=timedelta(hours=settings.export_link_hours),
    )
    home = catalogue.home()
    media = media_store_for(settings, db, clock)
    closers.append(media.aclose)
    engine = Engine(
        store=store,
        flows=catalogue.flows(),
        catalog=Catalog([ENGINE_LOCALES, catalogue.LOCALES]),
        box=answers_box(settings),
        media=media,
        services=handler_services,
        locks=ConversationLocks(_distributed_lock(settings, db), observe_wait=telemetry.lock_waited),
        clock=clock,
        home=home,
        intents=home.intents.match,
        hooks=hooks,
        passive_windows=passive_windows,
    )
    hooks.on_inbound.append(telemetry.inbound)
    return Core(
        settings=settings,
        db=db,
        store=store,
        engine=engine,
        platform=platform,
        bus=bus,
        telemetry=telemetry,
        platform_app=platform_app,
        platform_services=platform_services,
        closers=closers,
    )


def sync_metrics(core: Core) -> None:
    core.telemetry.sync(
        registry=core.metrics,
        store_writes=core.store.write_transactions,
        store_writer=core.store.writer_usage(),
        bus_healthy=core.bus.healthy,
    )


def metrics_sync_duty(core: Core) -> TimedDuty:
    """Under several workers a scrape reaches one of them and reads every worker's files:
    each worker copies its numbers in now and then, not only when it is the one scraped."""

    async def run() -> float:
        sync_metrics(core)
        return 0.0

    return TimedDuty("metrics_sync", METRICS_SYNC_SECONDS, run)


def media_retention_duty(container: Core) -> TimedDuty:
    """Chat media older than ``media_retention_days`` is deleted (counted in the metrics)."""
    media = container.engine.media
    days = container.settings.media_retention_days

    async def purge() -> float:
        if not isinstance(media, SharedMediaStore):
            return 0.0
        return float(await media.purge_older_than(container.engine.clock.now() - timedelta(days=days)))

    return TimedDuty("media_retention", 3600.0, purge)


PLATFORM_MAIL_SWEEP_SECONDS = 60.0


def platform_mail_duty(core: Core) -> TimedDuty:
    """The embedded platform's mail outbox, swept every minute.

    A mounted platform app's start-up hook never runs, so its own sweep does not either: without
    this, mail refused by a down SMTP server would wait for an in-process retry timer (lost on a
    restart) or for the next mail. Claims are conditional, so every worker may sweep.
    """

    async def sweep() -> float:
        services = core.platform_services
        if services is None:  # a separate platform service sweeps its own outbox
            return 0.0
        from seal_platform.mail_outbox import dispatcher_for

        dispatcher = dispatcher_for(services.db)
        return 0.0 if dispatcher is None else float(await dispatcher.deliver_due())

    return TimedDuty("platform_mail", PLATFORM_MAIL_SWEEP_SECONDS, sweep)


def page_links(settings: Settings) -> PageLinks:
    """Signs the secure password page's single-use links (the same key on every worker)."""
    return PageLinks(settings.secret_key.get_secret_value(), settings.public_base_url)
