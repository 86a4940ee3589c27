"""The composition root: the one place that builds adapters and wires them into the core.

``build_container`` assembles the service from settings; ``create_app`` is the ASGI app that
``sealbot serve`` runs. In the embedded default the platform runs in this process, mounted at
``/platform``, and the bot reaches it through ``httpx.ASGITransport``: the same client code path
as a remote platform over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
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
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.terminal import TerminalChannel
from bot.channels.webchat import WebChatChannel
from bot.channels.webchat.sessions import WebSessions
from bot.channels.wechat.channel import WeChatChannel, passive_window_for
from bot.channels.wechat.settings import WeChatSettings
from bot.engine.i18n import Catalog
from bot.engine.locks import ConversationLocks, DistributedLock, PostgresAdvisoryLock, RedisLock
from bot.engine.media import SharedMediaStore
from bot.engine.outbox import OutboxDispatcher
from bot.engine.ports import ChannelSender, Clock, SystemClock
from bot.engine.runtime import Engine, EngineHooks
from bot.engine.secrets_box import SecretBox
from bot.engine.sqlite_store import SqliteConversationStore
from bot.engine.store import ConversationStore, SqlConversationStore
from bot.errors import ConfigError
from bot.media_storage import media_store_for
from bot.platform_events import PlatformEventConsumer
from bot.redaction.forget import forget_account
from bot.secure_page.links import PageLinks
from bot.secure_page.router import password_page_router
from bot.secure_page.service import PasswordPages
from bot.security_headers import SecurityHeaders
from bot.settings import Settings
from bot.support.service import SupportDesk
from bot.support.settings import SupportSettings
from bot.support.wiring import install_support, staff_required
from dbkit.engine import make_engine
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
    from seal_platform.services import PlatformServices


@dataclass
class Container:
    settings: Settings
    db: AsyncEngine
    store: ConversationStore
    engine: Engine
    dispatcher: OutboxDispatcher
    platform: PlatformClient
    events: PlatformEventConsumer
    webchat: WebChatChannel
    platform_app: Any = None
    platform_services: Any = None
    reminders: ReminderJob | None = None
    deliveries: DeliveryStore | None = None
    reminder_reach: ReminderReach | None = None
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)
    scheduler: Any = None
    support: SupportDesk | None = None
    bridge: BridgeHub | None = None
    password_pages: PasswordPages | None = None
    # the terminal chat, then WeChat / Telegram when enabled by their settings (web chat is
    # ``webchat``); started in this order, stopped in reverse
    channels: list[Channel] = field(default_factory=list)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    wechat: WeChatChannel | None = None
    telegram: TelegramChannel | None = None

    async def start(self) -> None:
        await start_in_order([self.webchat, *self.channels])
        await self.dispatcher.start()
        await self.events.start()
        if self.reminders is not None:
            duties = service_duties(
                settings=self.reminders.settings,
                engine=self.engine,
                db=self.db,
                dispatcher=self.dispatcher,
                platform=self.platform.reminders,
                reminders=self.reminders,
            )
            if self.support is not None:
                desk = self.support

                async def support_timeouts() -> float:
                    report = await desk.check_timeouts()
                    return float(len(report.escalated) + len(report.handed_back))

                duties.append(TimedDuty("support_timeouts", 30.0, support_timeouts))
            duties.append(media_retention_duty(self))
            self.scheduler = build_scheduler(duties, self.metrics)
            self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
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
    from seal_platform.security import field_cipher_of

    await platform_migrate.upgrade(platform_settings.database_url, field_cipher_of(platform_settings))
    return build_platform_services(platform_settings, clock)


async def _embedded_platform(settings: Settings, clock: Clock | None) -> tuple[Any, Any]:
    from seal_platform.app import create_platform_app
    from seal_platform.console.bootstrap import ensure_bootstrap_admin

    services = await embedded_platform_services(settings, clock)
    await ensure_bootstrap_admin(services)
    return services, create_platform_app(services)


async def _operator_name(platform: PlatformClient) -> str:
    operator = await platform.operator.get()
    return operator.company or operator.service_name


async def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    extra_senders: dict[str, ChannelSender] | None = None,
) -> Container:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or SystemClock()
    await migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    # On SQLite (the embedded default) one writer thread with group commit; on PostgreSQL the
    # SQLAlchemy store, which many workers share.
    store: ConversationStore = (
        SqliteConversationStore(db) if db.dialect.name == "sqlite" else SqlConversationStore(db)
    )

    platform_app = platform_services = None
    if settings.platform_mode == "embedded":
        platform_services, platform_app = await _embedded_platform(settings, clock)
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
    )
    page_links = PageLinks(settings.secret_key.get_secret_value(), settings.public_base_url)
    handler_services.password_page = page_links.url
    handler_services.forget_account = functools.partial(forget_account, store)
    hooks = EngineHooks(event_handlers=catalogue.event_handlers())
    home = catalogue.home()
    wechat_settings, telegram_settings = WeChatSettings(), TelegramSettings()
    media = media_store_for(settings, db, clock)
    engine = Engine(
        store=store,
        flows=catalogue.flows(),
        catalog=Catalog([ENGINE_LOCALES, catalogue.LOCALES]),
        box=answers_box(settings),
        media=media,
        services=handler_services,
        locks=ConversationLocks(_distributed_lock(settings, db)),
        clock=clock,
        home=home,
        intents=home.intents.match,
        hooks=hooks,
        passive_windows=[passive_window_for(wechat_settings)] if wechat_settings.enabled else [],
    )
    webchat = WebChatChannel(
        engine=engine,
        store=store,
        max_upload_bytes=settings.max_upload_bytes,
        trusted_proxies=settings.trusted_proxy_networks,
        operator_name=lambda: _operator_name(platform),
        sessions=WebSessions(
            secret=settings.secret_key.get_secret_value(),
            engine=engine,
            store=store,
            https=settings.is_https,
            idle=timedelta(minutes=settings.web_idle_minutes),
            absolute=timedelta(hours=settings.web_absolute_hours),
        ),
    )
    wechat = (
        WeChatChannel(settings=wechat_settings, engine=engine, store=store, db=db, media=media, clock=clock)
        if wechat_settings.enabled
        else None
    )
    telegram = (
        TelegramChannel(settings=telegram_settings, engine=engine, store=store, media=media, clock=clock)
        if telegram_settings.enabled
        else None
    )
    channels: list[Channel] = [TerminalChannel(), *[c for c in (wechat, telegram) if c is not None]]
    senders: dict[str, ChannelSender] = {webchat.sender.channel: webchat.sender}
    for channel in channels:
        senders[channel.sender.channel] = channel.sender
    senders.update(extra_senders or {})
    # What a dead process left "sending" goes out again at once: at start, and on PostgreSQL,
    # where workers share the outbox, whenever another worker's presence lock is found free.
    dispatcher = OutboxDispatcher(
        store,
        senders,
        clock,
        reclaim_at_start=True,
        reclaim_every=10.0 if db.dialect.name == "postgresql" else None,
        box=engine.box,
    )
    hooks.after_commit.append(dispatcher.kick)
    events = PlatformEventConsumer(platform, engine, store, clock, poll_seconds=settings.event_poll_seconds)
    container = Container(
        settings=settings,
        db=db,
        store=store,
        engine=engine,
        dispatcher=dispatcher,
        platform=platform,
        events=events,
        webchat=webchat,
        platform_app=platform_app,
        platform_services=platform_services,
        channels=channels,
        wechat=wechat,
        telegram=telegram,
    )
    container.password_pages = PasswordPages(engine=engine, platform=platform, links=page_links)
    container.deliveries = DeliveryStore(db)
    reach = ReminderReach(
        platform=platform.reminders,
        secret=settings.secret_key.get_secret_value(),
        public_url=settings.public_base_url,
        clock=clock,
        wechat=next((c for c in channels if isinstance(c, WeChatChannel)), None),
    )
    container.reminder_reach = reach
    reach.offer_consent(engine)  # the 订阅通知 consent page, offered in the chat on WeChat
    container.reminders = ReminderJob(
        platform=platform.reminders,
        engine=engine,
        deliveries=container.deliveries,
        settings=SchedulerSettings(),
        clock=clock,
        proactive=reach.proactive,
        sms=reach.sms,
        mail=reach.mail,
        metrics=container.metrics,
    )
    container.bridge = install_bridge(container)
    container.support = install_support(
        container,
        SupportSettings(),
        telegram_bot=telegram.bot if telegram else None,
        wechat_quota=wechat.quota if wechat else None,
    )
    if telegram is not None and container.support.telegram is not None:
        telegram.processor.staff_desk = container.support.telegram
    if wechat is not None:
        wechat.receiver.transfer_to_kf = container.support.transfers_to_wechat_kf
    if platform_services is not None:
        platform_services.event_notifier.subscribe(events.wake)
        container.closers.append(platform_services.db.dispose)
    return container


def media_retention_duty(container: Container) -> TimedDuty:
    """Chat media older than ``media_retention_days`` is deleted (counted in the metrics)."""
    media = container.engine.media
    days = container.settings.media_retention_days

    async def purge() -> float:
        if not isinstance(media, SharedMediaStore):
            return 0.0
        return float(await media.purge_older_than(container.engine.clock.now() - timedelta(days=days)))

    return TimedDuty("media_retention", 3600.0, purge)


def answers_box(settings: Settings) -> SecretBox:
    """The key of sealed answers: the current secret seals, older ones still open."""
    return SecretBox(settings.secret_key.get_secret_value(), settings.old_secret_keys.get_secret_value())


def attach_password_page(app: FastAPI, container: Container) -> None:
    """The secure password page at /secure/password (passwords are never typed in a chat)."""
    if container.password_pages is not None:
        app.include_router(
            password_page_router(
                container.password_pages,
                https=container.settings.is_https,
                after_login=container.webchat.sessions.logged_in_elsewhere,
            )
        )


def _reminders_page(container: Container) -> APIRouter:
    """The staff view of upcoming and sent reminders (behind the support login)."""
    assert container.reminders is not None
    assert container.deliveries is not None
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

    assert container.support is not None
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
        if container.bridge is not None:
            app.include_router(bridge_router(container.bridge))
        if container.support is not None and container.support.router is not None:
            app.include_router(container.support.router)
            app.include_router(_reminders_page(container))
        if container.reminder_reach is not None:
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
