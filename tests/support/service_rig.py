"""The whole service (engine, handlers, embedded platform) as ``bot.app`` builds it, with the
support desk's settings of the test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from bot.app import Container, build_container
from bot.settings import Settings
from bot.support.service import SupportDesk
from bot.support.settings import SupportSettings
from bot.testing import ChatHarness, ManualClock, RecordingSender
from seal_platform.staff import StaffRole
from tests.fixtures.staff import add_staff as add_platform_staff
from tests.support.conftest import create_support_tables

STAFF_PASSWORD = "support-pass-2024"


@dataclass
class SupportService:
    container: Container
    desk: SupportDesk
    chat: ChatHarness
    clock: ManualClock

    def sms_code(self, phone: str, purpose: str) -> str:
        return str(self.container.platform_services.sms_provider.last_code(phone, purpose))

    async def settle(self) -> None:
        await self.container.events.drain()
        await self.container.dispatcher.drain()

    def app(self) -> FastAPI:
        app = FastAPI()
        assert self.desk.router is not None
        app.include_router(self.desk.router)
        return app

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app()), base_url="http://testserver")

    async def platform_call(self, method: str, path: str, *, token: str, json: Any = None) -> Any:
        """A platform API call as the bot makes it (service key + account token)."""
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.container.platform_app), base_url="http://platform"
        ) as client:
            response = await client.request(
                method,
                path,
                json=json,
                headers={
                    "Authorization": f"Bearer {self.container.settings.platform_service_key.get_secret_value()}",
                    "X-Account-Token": token,
                },
            )
        assert response.is_success, response.text
        return response.json()


async def add_staff(container: Container, username: str, roles: list[StaffRole]) -> None:
    await add_platform_staff(container.platform_services, username, roles, password=STAFF_PASSWORD)


async def build_support_service(
    tmp_path: Path, support_settings: SupportSettings, **settings: Any
) -> SupportService:
    clock = ManualClock()
    sender = RecordingSender(channel="test")
    bot_settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        data_dir=tmp_path / "var",
        public_base_url="http://127.0.0.1:8000",
        **settings,
    )
    container = await build_container(
        bot_settings, clock=clock, extra_senders={"test": sender}, support_settings=support_settings
    )
    # The lead's migration will create these; until then the tests create them.
    await create_support_tables(container.db)
    desk = container.support
    chat = ChatHarness(container.engine, container.dispatcher, sender, clock)
    return SupportService(container, desk, chat, clock)
