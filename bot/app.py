"""The composition root: the one place that builds adapters and wires them into the core.

``build_container`` assembles the service from settings, in phases (``bot.core.build_core``
first); ``create_app`` is the ASGI app that ``sealbot serve`` runs, with ``/healthz``,
``/readyz`` and ``/metrics`` (``docs/deploy.md``). In the embedded default the platform runs in
this process, mounted at ``/platform``, and the bot reaches it through ``httpx.ASGITransport``:
the same client code path as a remote platform over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response

from bot.bridge.hub import BridgeHub
from bot.bridge.router import bridge_router
from bot.bridge.wiring import install_bridge
from bot.channels.base import Channel, start_in_order, stop_in_reverse
from bot.channels.http_errors import install_input_refusals
from bot.channels.telegram.channel import TelegramChannel, make_bot
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.terminal import TerminalChannel
from bot.channels.webchat import CHANNEL as WEB_CHANNEL
from bot.channels.webchat import WebChatChannel
from bot.channels.webchat.sessions import WebSessions
from bot.channels.webchat.wakeups import WakeUps
from bot.channels.wechat.channel import WeChatChannel, passive_window_for
from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.settings import WeChatSettings
from bot.core import Core as Core
from bot.core import (
    build_core,
    embedded_platform_settings,
    media_retention_duty,
    metrics_sync_duty,
    page_links,
    platform_mail_duty,
    sync_metrics,
)
from bot.core import embedded_platform_services as embedded_platform_services
from bot.engine.outbox import OutboxDispatcher
from bot.engine.ports import ChannelSender, Clock, SystemClock
from bot.engine.runtime import EngineHooks
from bot.health import Check, Readiness, RedisCheck, bus_check, database_check, platform_check
from bot.platform_events import EVENTS_TOPIC, PlatformEventConsumer
from bot.request_ids import RequestIds
from bot.secure_page.router import password_page_router
from bot.secure_page.service import PasswordPages
from bot.security_headers import SecurityHeaders
from bot.settings import Settings, from_environment
from bot.support.service import SupportDesk
from bot.support.settings import SupportSettings, load_support_settings
from bot.support.wiring import install_support, staff_required
from dbkit.bus import Announcer
from handlers import catalogue
from observability.route_warm_up import warm_routes
from platform_client.client import PlatformClient
from scheduler.console import reminders_console_router
from scheduler.deliveries import DeliveryStore
from scheduler.jobs import TimedDuty, build_scheduler, service_duties
from scheduler.preview import PreviewLine, preview_reminders
from scheduler.reminders import ReminderJob
from scheduler.settings import SchedulerSettings
from scheduler.wiring import ReminderReach

log = logging.getLogger("sealbot")

# The HTML pages (and their APIs) that get CSP, no framing, nosniff and a referrer policy.
PAGE_PREFIXES = ("/chat", "/console", "/support", "/secure", "/platform/console", "/platform/pay")

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from telegram import Bot as TelegramBot


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
    # what /readyz checks: the database, the platform, the bus, Redis when configured
    readiness: Readiness
    # built with its duties, started by ``start`` (APScheduler ships no types)
    scheduler: AsyncIOScheduler
    # the terminal chat, then WeChat / Telegram when enabled by their settings (web chat is
    # ``webchat``); started in this order, stopped in reverse
    channels: list[Channel]
    wechat: WeChatChannel | None = None
    telegram: TelegramChannel | None = None

    async def start(self) -> None:
        # The bus first: what starts next subscribes to it (and a bus that cannot connect yet
        # keeps trying in the background; the sweeps cover meanwhile).
        await self.bus.start()
        await start_in_order([self.webchat, *self.channels])
        await self.support.feed.start()
        await self.dispatcher.start()
        await self.events.start()
        await self.bridge.start()
        self.scheduler.start()

    def sync_metrics(self) -> None:
        """Copy the numbers kept outside the Prometheus metrics into them (before a scrape)."""
        sync_metrics(self)

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.bridge.stop()
        await self.events.stop()
        await self.dispatcher.stop()
        await self.support.feed.stop()
        await stop_in_reverse([self.webchat, *self.channels])
        await self.platform.shutdown()
        await self.store.close()
        if self.engine.locks.distributed is not None:
            await self.engine.locks.distributed.close()
        for close in reversed(self.closers):
            result = close()
            if asyncio.iscoroutine(result):
                await result
        await self.bus.close()
        await self.db.dispose()


@dataclass(frozen=True)
class _ChannelSettings:
    """What the channels need before the support desk is built (the desk needs their bot and
    quota, and they need the desk's hooks): their settings, the Telegram bot, the WeChat quota."""

    wechat: WeChatSettings
    telegram: TelegramSettings
    telegram_bot: TelegramBot | None
    wechat_quota: CustomerServiceQuota | None


def check_configuration(settings: Settings) -> None:
    """What would make the service fail to start, found before it starts, without I/O: the
    channels', the support desk's, the scheduler's and the in-process platform's settings (in
    production, its demo parts). Raises the first problem as a ``ConfigError`` naming its setting."""
    wechat = from_environment(WeChatSettings)
    telegram = from_environment(TelegramSettings)
    if wechat.enabled:
        wechat.check()
    if telegram.enabled:
        telegram.check()
    load_support_settings()
    from_environment(SchedulerSettings)
    if settings.platform_mode == "embedded":
        embedded_platform_settings(settings)


def _channel_settings(core: Core, wechat: WeChatSettings) -> _ChannelSettings:
    telegram = from_environment(TelegramSettings)
    return _ChannelSettings(
        wechat=wechat,
        telegram=telegram,
        telegram_bot=make_bot(telegram) if telegram.enabled else None,
        wechat_quota=CustomerServiceQuota(core.db, wechat.appid, core.store) if wechat.enabled else None,
    )


async def _operator_name(platform: PlatformClient) -> str:
    operator = await platform.operator.get()
    return operator.company or operator.service_name


def _webchat(core: Core) -> WebChatChannel:
    settings, engine, store = core.settings, core.engine, core.store
    return WebChatChannel(
        engine=engine,
        store=store,
        wakeups=WakeUps(core.bus, channel=WEB_CHANNEL, sweep_seconds=settings.web_poll_sweep_seconds),
        max_upload_bytes=settings.max_upload_bytes,
        trusted_proxies=settings.trusted_proxy_networks,
        operator_name=lambda: _operator_name(core.platform),
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
    wechat_settings = from_environment(WeChatSettings)
    core = await build_core(
        settings,
        clock=clock,
        hooks=hooks,
        passive_windows=[passive_window_for(wechat_settings)] if wechat_settings.enabled else [],
    )
    engine, store, db, platform = core.engine, core.store, core.db, core.platform

    parts = _channel_settings(core, wechat_settings)
    support = install_support(
        core,
        support_settings or load_support_settings(),
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
    # What a dead process left "sending" goes out again at once: at start, and on PostgreSQL,
    # where workers share the outbox, whenever another worker's presence lock is found free.
    dispatcher = OutboxDispatcher(
        store,
        senders,
        clock,
        # What a dead process left "sending" goes out again at once: at start, and on
        # PostgreSQL, where workers share the outbox, whenever another worker's presence lock
        # is found free.
        reclaim_at_start=True,
        reclaim_every=10.0 if db.dialect.name == "postgresql" else None,
        box=engine.box,
        observer=core.telemetry,
        after_sent=[webchat.wakeups.delivered],
    )
    hooks.after_commit.append(dispatcher.kick)
    events = PlatformEventConsumer(
        platform, engine, store, clock, poll_seconds=settings.event_poll_seconds, bus=core.bus
    )
    if core.platform_services is not None:
        # The platform in this process wakes this worker's consumer at once, and the others
        # through the bus (they share the platform's database).
        announcer = Announcer(core.bus, EVENTS_TOPIC)
        core.platform_services.event_notifier.subscribe(events.wake)
        core.platform_services.event_notifier.subscribe(announcer)
        core.closers.append(announcer.close)

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
    reach.offer_consent(engine)  # the 订阅通知 consent page, offered in the chat on WeChat
    reminders = ReminderJob(
        platform=platform.reminders,
        engine=engine,
        deliveries=deliveries,
        settings=from_environment(SchedulerSettings),
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
    duties += [
        support_timeouts_duty(support),
        media_retention_duty(core),
        metrics_sync_duty(core),
        platform_mail_duty(core),
    ]
    readiness = _readiness(core)

    return Container(
        # every field of the core as built: a field listed by hand here could be forgotten and
        # silently take its default (a second, empty metrics registry)
        **{part.name: getattr(core, part.name) for part in fields(Core)},
        dispatcher=dispatcher,
        events=events,
        webchat=webchat,
        support=support,
        bridge=bridge,
        password_pages=password_pages,
        deliveries=deliveries,
        reminders=reminders,
        reminder_reach=reach,
        readiness=readiness,
        scheduler=build_scheduler(duties, core.metrics),
        channels=channels,
        wechat=wechat,
        telegram=telegram,
    )


def _readiness(core: Core) -> Readiness:
    checks: dict[str, Check] = {
        "database": database_check(core.db),
        "platform": platform_check(core.platform),
        "bus": bus_check(core.bus),
    }
    if core.settings.redis_url:
        redis = RedisCheck(core.settings.redis_url)
        checks["redis"] = redis
        core.closers.append(redis.close)
    return Readiness(checks)


def support_timeouts_duty(desk: SupportDesk) -> TimedDuty:
    """Escalates tickets waiting too long and hands idle ones back to the bot."""

    async def run() -> float:
        report = await desk.check_timeouts()
        return float(len(report.escalated) + len(report.handed_back))

    return TimedDuty("support_timeouts", 30.0, run)


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


def create_app(
    settings: Settings | None = None, *, after_start: Callable[[], object] | None = None
) -> FastAPI:
    """The service's ASGI app; ``after_start`` is called once everything has started (the
    service process freezes what start-up made, ``bot.gc_settings``)."""
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
        await warm_routes(app)
        if after_start is not None:
            after_start()
        try:
            yield
        finally:
            await container.stop()

    app = FastAPI(title="sealbot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(SecurityHeaders, prefixes=PAGE_PREFIXES, https=settings.is_https)
    # outermost: every line logged while handling a request names it (JSON logs)
    app.add_middleware(RequestIds)
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

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        # In production the public answer names what is down, not why (the log says why).
        return await readiness_response(
            getattr(app.state, "container", None), reasons=not settings.production
        )

    if not settings.production:
        # In production /metrics is served only on the admin port (bot.admin).
        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return metrics_response(app.state.container)

    return app


async def readiness_response(container: Container | None, *, reasons: bool = True) -> JSONResponse:
    """``/readyz``: 200 when every dependency answers, else 503 naming what is down (and why,
    with ``reasons``)."""
    if container is None:
        return JSONResponse({"status": "unready", "checks": {"service": "starting"}}, status_code=503)
    ready, body = await container.readiness.report(reasons=reasons)
    return JSONResponse(body, status_code=200 if ready else 503)


def metrics_response(container: Container) -> Response:
    """The Prometheus exposition: this worker's metrics, or every worker's on this host under
    multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``)."""
    container.sync_metrics()
    return Response(container.telemetry.render(), media_type=container.telemetry.metrics.content_type)
