"""A small world for the scheduler: the real platform (in-process, SQLite), the real engine on a
bot database with the real renewal flow behind the reminder's button, and one clock for both
sides. Accounts are registered through the platform's API (SMS code and all) and chat
identities log in with the session the platform issued.

Seals are made as the product makes them (``tests/scheduler/seals.py``): applied for, paid,
approved, produced at the station and shipped; renewed and cancelled by real orders. Their
expiry moves only with the shared clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.local_server import serve_locally
from bot.channels.wechat.fake_server import FakeWeChat, create_app
from bot.engine.context import Ctx
from bot.engine.flow import FlowRegistry
from bot.engine.locks import ConversationLocks
from bot.engine.messages import ConversationKey, OutboundMessage
from bot.engine.state import Session
from bot.testing import ChatHarness, ManualClock
from handlers import reminders as reminder_handlers
from handlers import renewal as renewal_handlers
from handlers.catalogue import LOCALES as HANDLER_LOCALES
from handlers.menu import Home
from handlers.services import HandlerServices
from platform_client.client import PlatformClient
from platform_client.reminders import RemindersAPI
from scheduler.deliveries import DeliveryStore
from scheduler.metrics import MetricsRegistry
from scheduler.proactive import ProactiveDelivery
from scheduler.reminders import ReminderJob
from scheduler.settings import SchedulerSettings
from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.db import Base as PlatformBase
from seal_platform.seals import SealStatus
from seal_platform.security import PasswordHasher
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from tests.platform.conftest import import_all_platform_modules
from tests.scheduler.seals import HOLDER, HOLDER_ID, PASSWORD, SealMaker, SealPlan

SERVICE_KEY = "scheduler-test-service-key"
APPID, SECRET = "wx_walk_appid", "walk-secret"
# 2026-11-28 10:00 in Shanghai: inside the default send window.
START = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)

_numbers = itertools.count(1)


def flows() -> FlowRegistry:
    return FlowRegistry([*reminder_handlers.FLOWS, *renewal_handlers.FLOWS])


def home() -> Home:
    return Home(list(reminder_handlers.MENU), reminder_handlers.INTENTS)


def scheduler_settings(**overrides: object) -> SchedulerSettings:
    return SchedulerSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


@dataclass
class Platform:
    services: PlatformServices
    app: FastAPI
    client: PlatformClient
    maker: SealMaker
    sessions: dict[str, Session]
    owners: dict[str, str] = field(default_factory=dict)

    @property
    def reminders(self) -> RemindersAPI:
        return RemindersAPI(self.client)

    async def add_account(self) -> str:
        """Register as a user would: an SMS code to a new phone, then the account."""
        phone = f"139{next(_numbers):08d}"
        sms = self.services.sms_provider
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://platform.test",
            headers={"Authorization": f"Bearer {SERVICE_KEY}"},  # the bot's credential
        ) as api:
            sent = await api.post("/v1/sms-codes", json={"phone": phone, "purpose": "register"})
            assert sent.status_code == 201, sent.text
            registered = await api.post(
                "/v1/accounts",
                json={
                    "phone": phone,
                    "sms_code": sms.last_code(phone, "register"),
                    "password": PASSWORD,
                },
            )
            assert registered.status_code == 201, registered.text
            body = registered.json()
            # real-name verified, as the platform requires before a seal is applied for
            verified = await api.post(
                "/v1/me/realname",
                json={"name": HOLDER, "id_number": HOLDER_ID},
                headers={"X-Account-Token": body["session"]["token"]},
            )
            assert verified.status_code == 200, verified.text
        account_id = str(body["account"]["id"])
        self.sessions[account_id] = Session(
            account_id=account_id, token=body["session"]["token"], phone=phone
        )
        return account_id

    async def add_seal(
        self,
        account_id: str,
        *,
        expires_in: timedelta,
        name: str = "示例科技有限公司",
        kind: str = "enterprise",
        status: SealStatus = SealStatus.ACTIVE,
    ) -> str:
        """One seal made through the product; the clock moves until it has ``expires_in`` left."""
        [seal_id] = await self.add_seals(
            [SealPlan(account_id, expires_in, name, kind, cancelled=status == SealStatus.CANCELLED)]
        )
        return seal_id

    async def add_seals(self, plans: Sequence[SealPlan]) -> list[str]:
        """Several seals at once, each with its own time left at the one moment the clock ends on."""
        made = await self.maker.make(plans)
        self.owners.update({seal_id: plan.account_id for seal_id, plan in zip(made, plans, strict=True)})
        return made

    async def request_invoice(self, account_id: str, email: str) -> None:
        """The account asks for its orders' e-invoices, giving this address."""
        await self.maker.request_invoice(account_id, email)

    async def renew(self, seal_id: str, *, years: int = 1) -> None:
        await self.maker.renew(self.owners[seal_id], seal_id, years=years)

    async def cancel(self, seal_id: str) -> None:
        await self.maker.cancel(self.owners[seal_id], seal_id)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[FakeWeChat, str]]:
    """The fake WeChat API on 127.0.0.1, recording every request; and its base URL."""
    fake = FakeWeChat(APPID, SECRET)
    async with serve_locally(create_app(fake)) as base:
        yield fake, base


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def platform_overrides() -> dict[str, Any]:
    """Platform settings a test module changes (a module overrides this fixture)."""
    return {}


@pytest.fixture
async def platform(
    tmp_path: Path, clock: ManualClock, platform_overrides: dict[str, Any]
) -> AsyncIterator[Platform]:
    settings = PlatformSettings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}",
        data_dir=tmp_path / "platform-data",
        service_key=SERVICE_KEY,
        dev_pages=False,
        **platform_overrides,
    )
    services = build_platform_services(
        settings, clock, password_hasher=PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1)
    )
    import_all_platform_modules()
    async with services.db.engine.begin() as conn:
        await conn.run_sync(PlatformBase.metadata.create_all)
    app = create_platform_app(services)
    client = PlatformClient("http://platform.test", SERVICE_KEY, transport=httpx.ASGITransport(app=app))
    await client.initialize()
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://platform.test",
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    )
    sessions: dict[str, Session] = {}
    yield Platform(services, app, client, SealMaker(services, api, client, clock, sessions), sessions)
    await api.aclose()
    await client.shutdown()
    await services.db.dispose()


@dataclass
class Bot:
    """One scheduler worker: an engine, its outbox and the reminder job on a bot database."""

    chat: ChatHarness
    deliveries: DeliveryStore
    job: ReminderJob
    platform: Platform
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)

    @property
    def sent(self) -> list[OutboundMessage]:
        return self.chat.sender.sent

    async def bind(self, user: str, account_id: str, *, lang: str | None = None) -> ConversationKey:
        """A chat identity logged in to the account (with the session the platform issued at
        registration), having just spoken (its most recent)."""
        key = self.chat.key(user)
        session = self.platform.sessions[account_id]

        async def login(ctx: Ctx) -> None:
            ctx.login(session)
            if lang:
                ctx.state.locale = lang

        await self.chat.engine.push(key, login)
        await self.chat.say("你好", user=user, lang=lang)
        return key

    async def run(self) -> None:
        """One scheduler pass, then the outbox delivers and its outcome is copied back."""
        await self.job.run_once()
        await self.chat.dispatcher.drain()
        await self.job.sync_outbox(self.chat.clock.now())

    def reminders_to(self, user: str) -> list[str]:
        return [m.reply.text for m in self.sent if m.key.user_id == user and "@go:renew:" in _tokens(m)]


def _tokens(message: OutboundMessage) -> str:
    return " ".join(o.token for o in message.reply.options)


BotFactory = Callable[..., "AsyncIterator[Bot]"]


async def make_bot(
    platform: Platform,
    clock: ManualClock,
    *,
    db_url: str = "",
    db: AsyncEngine | None = None,
    schema: bool = True,
    settings: SchedulerSettings | None = None,
    proactive: Sequence[ProactiveDelivery] = (),
    locks: ConversationLocks | None = None,
    channel: str = "test",
) -> Bot:
    chat = await ChatHarness.create(
        channel=channel,
        flows=flows(),
        db_url=db_url,
        db=db,
        schema=schema,
        catalog_dirs=[HANDLER_LOCALES],
        home=home(),
        clock=clock,
        locks=locks,
        services=HandlerServices(platform=platform.client),
    )
    deliveries = DeliveryStore(chat.store.engine)  # type: ignore[attr-defined]
    metrics = MetricsRegistry()
    job = ReminderJob(
        platform=platform.reminders,
        engine=chat.engine,
        deliveries=deliveries,
        settings=settings or scheduler_settings(),
        clock=clock,
        proactive={p.channel: p for p in proactive},
        metrics=metrics,
    )
    return Bot(chat, deliveries, job, platform, metrics)


@pytest.fixture
async def bot(platform: Platform, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Bot]:
    worker = await make_bot(platform, clock, db_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    yield worker
    await worker.chat.close()
