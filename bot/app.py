"""The composition root: the one place that builds adapters and wires them into the core.

``build_container`` assembles the service from settings; ``create_app`` is the ASGI app that
``sealbot serve`` runs. In the embedded default the platform runs in this process, mounted at
``/platform``, and the bot reaches it through ``httpx.ASGITransport``: the same client code path
as a remote platform over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import migrate
from bot.bridge.hub import BridgeHub
from bot.bridge.router import bridge_router
from bot.bridge.wiring import install_bridge
from bot.channels.base import Channel, start_in_order, stop_in_reverse
from bot.channels.http_errors import install_input_refusals
from bot.channels.telegram.channel import TelegramChannel, make_bot
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.terminal import TerminalChannel
from bot.channels.webchat import WebChatChannel
from bot.channels.webchat.sessions import WebSessions
from bot.channels.wechat.channel import WeChatChannel, passive_window_for
from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.settings import WeChatSettings
from bot.engine.i18n import Catalog
from bot.engine.locks import ConversationLocks, DistributedLock, PostgresAdvisoryLock, RedisLock
from bot.engine.media import LocalMediaStore
from bot.engine.outbox import OutboxDispatcher
from bot.engine.ports import ChannelSender, Clock, SystemClock
from bot.engine.runtime import Engine, EngineHooks, PassiveWindow
from bot.engine.secrets_box import SecretBox
from bot.engine.sqlite_store import SqliteConversationStore
from bot.engine.store import ConversationStore, SqlConversationStore
from bot.errors import ConfigError
from bot.platform_events import PlatformEventConsumer
from bot.secure_page.links import PageLinks
from bot.secure_page.router import password_page_router
from bot.secure_page.service import PasswordPages
from bot.security_headers import SecurityHeaders
from bot.settings import Settings
from bot.support.service import SupportDesk
from bot.support.settings import SupportSettings
from bot.support.wiring import install_support, staff_required
from dbkit.engine import make_engine
from dbkit.envelope import Keyring
from handlers import catalogue
from handlers.services import HandlerServices
from platform_client.client import PlatformClient
from scheduler.console import reminders_console_router
from scheduler.deliveries import DeliveryStore
from scheduler.jobs import TimedDuty, build_scheduler, service_duties
from scheduler.metrics import MetricsRegistry
from scheduler.preview import PreviewLine, preview_reminders
from scheduler.reminders import ReminderJob
from scheduler.settings import SchedulerSettings
from scheduler.wiring import ReminderReach

log = logging.getLogger("sealbot")

ENGINE_LOCALES = Path(__file__).parent / "locales"
# The HTML pages (and their APIs) that get CSP, no framing, nosniff and a referrer policy.
PAGE_PREFIXES = ("/chat", "/console", "/support", "/secure", "/platform/console", "/platform/pay")

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from telegram import Bot as TelegramBot

    from seal_platform.services import PlatformServices


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
    # the platform in this process (embedded mode); None when it is a separate service
    platform_app: FastAPI | None = None
    platform_services: PlatformServices | None = None
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)
    # called on stop, newest first (coroutines are awaited): what wiring opened beside the core
    closers: list[Callable[[], Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True, eq=False)
class Container(Core):
    """The whole service, every part built before it (frozen: nothing is wired afterwards)."""

    dispatcher: OutboxDispatcher
    events: PlatformEventConsumer
    webchat: WebChatChannel
    support: SupportDesk
    bridge: BridgeHub
    password_pages: PasswordPages
    deliveries: DeliveryStore
    reminders: ReminderJob
    reminder_reach: ReminderReach
    # built with its duties, started by ``start`` (APScheduler ships no types)
    scheduler: AsyncIOScheduler
    # the terminal chat, then WeChat / Telegram when enabled by their settings (web chat is
    # ``webchat``); started in this order, stopped in reverse
    channels: list[Channel]
    wechat: WeChatChannel | None = None
    telegram: TelegramChannel | None = None

    async def start(self) -> None:
        await start_in_order([self.webchat, *self.channels])
        await self.dispatcher.start()
        await self.events.start()
        self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.events.stop()
        await self.dispatcher.stop()
        await stop_in_reverse([self.webchat, *self.channels])
        await self.platform.shutdown()
        await self.store.close()
        if self.engine.locks.distributed is not None:
            await self.engine.locks.distributed.close()
        for close in reversed(self.closers):
            result = close()
            if asyncio.iscoroutine(result):
                await result
        await self.db.dispose()


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


async def embedded_platform_services(settings: Settings, clock: Clock | None = None) -> PlatformServices:
    """The in-process platform's services, its database migrated to head."""
    from seal_platform import migrate as platform_migrate
    from seal_platform.app import build_platform_services
    from seal_platform.settings import PlatformSettings

    platform_settings = PlatformSettings(
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
    await platform_migrate.upgrade(platform_settings.database_url)
    return build_platform_services(platform_settings, clock)


async def _embedded_platform(settings: Settings, clock: Clock | None) -> tuple[PlatformServices, FastAPI]:
    from seal_platform.app import create_platform_app
    from seal_platform.console.bootstrap import ensure_bootstrap_admin

    services = await embedded_platform_services(settings, clock)
    await ensure_bootstrap_admin(services)
    return services, create_platform_app(services)


async def build_core(
    settings: Settings, *, clock: Clock, hooks: EngineHooks, passive_windows: list[PassiveWindow]
) -> Core:
    """Phase one: databases migrated, the store, the platform (in this process or remote)
    and its client, and the engine on them."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    # On SQLite (the embedded default) one writer thread with group commit; on PostgreSQL the
    # SQLAlchemy store, which many workers share.
    store: ConversationStore = (
        SqliteConversationStore(db) if db.dialect.name == "sqlite" else SqlConversationStore(db)
    )

    platform_app: FastAPI | None = None
    platform_services: PlatformServices | None = None
    closers: list[Callable[[], Any]] = []
    if settings.platform_mode == "embedded":
        platform_services, platform_app = await _embedded_platform(settings, clock)
        closers.append(platform_services.db.dispose)
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=platform_app)
        base_url = "http://platform.embedded"
    else:
        transport = httpx.AsyncHTTPTransport(retries=0)
        base_url = settings.platform_url
    platform = PlatformClient(
        base_url=base_url, service_key=settings.platform_service_key.get_secret_value(), transport=transport
    )
    await platform.initialize()

    handler_services = HandlerServices(
        platform=platform,
        public_base_url=settings.public_base_url,
        sms_dev_page=(settings.public_base_url + "/platform/dev/sms")
        if platform_services is not None and platform_services.settings.dev_pages
        else None,
        password_page=page_links(settings).url,
    )
    home = catalogue.home()
    engine = Engine(
        store=store,
        flows=catalogue.flows(),
        catalog=Catalog([ENGINE_LOCALES, catalogue.LOCALES]),
        box=SecretBox(settings.secret_key.get_secret_value()),
        media=LocalMediaStore(settings.data_dir / "media", media_keyring(settings)),
        services=handler_services,
        locks=ConversationLocks(_distributed_lock(settings, db)),
        clock=clock,
        home=home,
        intents=home.intents.match,
        hooks=hooks,
        passive_windows=passive_windows,
    )
    return Core(
        settings=settings,
        db=db,
        store=store,
        engine=engine,
        platform=platform,
        platform_app=platform_app,
        platform_services=platform_services,
        closers=closers,
    )


@dataclass(frozen=True)
class _ChannelSettings:
    """What the channels need before the support desk is built (the desk needs their bot and
    quota, and they need the desk's hooks): their settings, the Telegram bot, the WeChat quota."""

    wechat: WeChatSettings
    telegram: TelegramSettings
    telegram_bot: TelegramBot | None
    wechat_quota: CustomerServiceQuota | None


def _channel_settings(core: Core) -> _ChannelSettings:
    wechat, telegram = WeChatSettings(), TelegramSettings()
    return _ChannelSettings(
        wechat=wechat,
        telegram=telegram,
        telegram_bot=make_bot(telegram) if telegram.enabled else None,
        wechat_quota=CustomerServiceQuota(core.db, wechat.appid, core.store) if wechat.enabled else None,
    )


def _webchat(core: Core) -> WebChatChannel:
    settings, engine, store = core.settings, core.engine, core.store
    return WebChatChannel(
        engine=engine,
        store=store,
        max_upload_bytes=settings.max_upload_bytes,
        sessions=WebSessions(
            secret=settings.secret_key.get_secret_value(),
            engine=engine,
            store=store,
            https=settings.is_https,
            idle=timedelta(minutes=settings.web_idle_minutes),
            absolute=timedelta(hours=settings.web_absolute_hours),
        ),
    )


async def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    extra_senders: dict[str, ChannelSender] | None = None,
    support_settings: SupportSettings | None = None,
) -> Container:
    """The service, built in phases so that each part is given what it needs when it is made:
    the core (store, platform, engine); the channels' settings, bot and quota; the support
    desk on them; the channels, given the desk's hooks; delivery (outbox, platform events);
    the bridge, password pages and reminders; then the container, with every field set."""
    clock = clock or SystemClock()
    hooks = EngineHooks(event_handlers=catalogue.event_handlers())
    wechat_settings = WeChatSettings()
    core = await build_core(
        settings,
        clock=clock,
        hooks=hooks,
        passive_windows=[passive_window_for(wechat_settings)] if wechat_settings.enabled else [],
    )
    engine, store, db, platform = core.engine, core.store, core.db, core.platform

    parts = _channel_settings(core)
    support = install_support(
        core,
        support_settings or SupportSettings(),
        telegram_bot=parts.telegram_bot,
        wechat_quota=parts.wechat_quota,
    )

    webchat = _webchat(core)
    wechat = (
        WeChatChannel(
            settings=parts.wechat,
            engine=engine,
            store=store,
            db=db,
            media=engine.media,
            clock=clock,
            quota=parts.wechat_quota,
            transfer_to_kf=support.transfers_to_wechat_kf,
        )
        if parts.wechat.enabled
        else None
    )
    telegram = (
        TelegramChannel(
            settings=parts.telegram,
            engine=engine,
            store=store,
            media=engine.media,
            clock=clock,
            bot=parts.telegram_bot,
            staff_desk=support.telegram,
        )
        if parts.telegram.enabled
        else None
    )
    channels: list[Channel] = [TerminalChannel(), *[c for c in (wechat, telegram) if c is not None]]
    senders: dict[str, ChannelSender] = {webchat.sender.channel: webchat.sender}
    for channel in channels:
        senders[channel.sender.channel] = channel.sender
    senders.update(extra_senders or {})
    # One process owns an SQLite database: what it finds "sending" at start, a dead one left.
    dispatcher = OutboxDispatcher(
        store, senders, clock, reclaim_at_start=db.dialect.name == "sqlite", box=engine.box
    )
    hooks.after_commit.append(dispatcher.kick)
    events = PlatformEventConsumer(platform, engine, store, clock, poll_seconds=settings.event_poll_seconds)
    if core.platform_services is not None:
        core.platform_services.event_notifier.subscribe(events.wake)

    bridge = install_bridge(core)
    password_pages = PasswordPages(engine=engine, platform=platform, links=page_links(settings))
    deliveries = DeliveryStore(db)
    reach = ReminderReach(
        platform=platform.reminders,
        secret=settings.secret_key.get_secret_value(),
        public_url=settings.public_base_url,
        clock=clock,
        wechat=wechat,
    )
    reminders = ReminderJob(
        platform=platform.reminders,
        engine=engine,
        deliveries=deliveries,
        settings=SchedulerSettings(),
        clock=clock,
        proactive=reach.proactive,
        sms=reach.sms,
        mail=reach.mail,
        metrics=core.metrics,
    )
    duties = service_duties(
        settings=reminders.settings,
        engine=engine,
        db=db,
        dispatcher=dispatcher,
        platform=platform.reminders,
        reminders=reminders,
    )
    duties += [support_timeouts_duty(support), media_retention_duty(core)]

    return Container(
        settings=settings,
        db=db,
        store=store,
        engine=engine,
        platform=platform,
        platform_app=core.platform_app,
        platform_services=core.platform_services,
        metrics=core.metrics,
        closers=core.closers,
        dispatcher=dispatcher,
        events=events,
        webchat=webchat,
        support=support,
        bridge=bridge,
        password_pages=password_pages,
        deliveries=deliveries,
        reminders=reminders,
        reminder_reach=reach,
        scheduler=build_scheduler(duties, core.metrics),
        channels=channels,
        wechat=wechat,
        telegram=telegram,
    )


def support_timeouts_duty(desk: SupportDesk) -> TimedDuty:
    """Escalates tickets waiting too long and hands idle ones back to the bot."""

    async def run() -> float:
        report = await desk.check_timeouts()
        return float(len(report.escalated) + len(report.handed_back))

    return TimedDuty("support_timeouts", 30.0, run)


def media_retention_duty(container: Core) -> TimedDuty:
    """Chat media older than ``media_retention_days`` is deleted (counted in the metrics)."""
    media = container.engine.media
    days = container.settings.media_retention_days

    async def purge() -> float:
        if not isinstance(media, LocalMediaStore):
            return 0.0
        return float(await media.purge_older_than(container.engine.clock.now() - timedelta(days=days)))

    return TimedDuty("media_retention", 3600.0, purge)


def page_links(settings: Settings) -> PageLinks:
    """Signs the secure password page's single-use links (the same key on every worker)."""
    return PageLinks(settings.secret_key.get_secret_value(), settings.public_base_url)


def media_keyring(settings: Settings) -> Keyring:
    """The keys of the chat media store (scans pass through it): current and older secrets."""
    return Keyring.from_secrets(
        settings.secret_key.get_secret_value(), settings.old_secret_keys.get_secret_value(), purpose=b"media"
    )


def attach_password_page(app: FastAPI, container: Container) -> None:
    """The secure password page at /secure/password (passwords are never typed in a chat)."""
    app.include_router(
        password_page_router(
            container.password_pages,
            https=container.settings.is_https,
            after_login=container.webchat.sessions.logged_in_elsewhere,
        )
    )


def _reminders_page(container: Container) -> APIRouter:
    """The staff view of upcoming and sent reminders (behind the support login)."""
    job, deliveries = container.reminders, container.deliveries

    async def forecast(days: float) -> list[PreviewLine]:
        return await preview_reminders(
            platform=container.platform.reminders,
            store=container.store,
            deliveries=deliveries,
            settings=job.settings,
            now=container.engine.clock.now(),
            days=days,
        )

    async def phone_of(account_id: str) -> str:
        return (await container.platform.reminders.contact(account_id)).phone

    return reminders_console_router(
        deliveries,
        forecast,
        staff=staff_required(container.support),
        phone_of=phone_of,
        clock=container.engine.clock,
        zone=container.support.settings.time_zone,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    from bot.settings import load_settings

    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await build_container(settings)
        app.state.container = container
        container.webchat.attach(app)
        attach_password_page(app, container)
        for channel in container.channels:
            if channel.router is not None:
                app.include_router(channel.router)
        app.include_router(bridge_router(container.bridge))
        if container.support.router is not None:
            app.include_router(container.support.router)
        app.include_router(_reminders_page(container))
        app.include_router(container.reminder_reach.router())
        if container.platform_app is not None:
            app.mount("/platform", container.platform_app)
        await container.start()
        try:
            yield
        finally:
            await container.stop()

    app = FastAPI(title="sealbot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(SecurityHeaders, prefixes=PAGE_PREFIXES, https=settings.is_https)
    install_input_refusals(app)

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/chat")

    @app.get("/console", include_in_schema=False)
    async def console() -> RedirectResponse:
        # The staff console belongs to the platform, mounted at /platform in the embedded default.
        return RedirectResponse("/platform/console/")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if not settings.production:
        # In production /metrics is served only on the admin port (bot.admin).
        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> PlainTextResponse:
            return metrics_response(app.state.container)

    return app


def metrics_response(container: Container) -> PlainTextResponse:
    lines = [
        f"sealbot_outbox_sent_total {container.dispatcher.sent}",
        f"sealbot_outbox_failed_total {container.dispatcher.failed}",
        f"sealbot_store_write_transactions_total {container.store.write_transactions}",
    ]
    lines += [f"sealbot_{name} {value:g}" for name, value in sorted(container.metrics.snapshot().items())]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
