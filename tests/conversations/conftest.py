"""Conversations through the whole service: real engine, platform client and platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Container, build_container
from bot.settings import Settings
from bot.testing import ChatHarness, ManualClock, RecordingSender


@dataclass
class Service:
    container: Container
    chat: ChatHarness
    clock: ManualClock

    def sms_code(self, phone: str, purpose: str | None = None) -> str:
        provider = self.container.platform_services.sms_provider
        return str(provider.last_code(phone, purpose))

    async def settle(self) -> None:
        """Deliver pending platform events and outbox messages, as the background loops would."""
        await self.container.events.drain()
        relay = self.container.engine.services.extra.get("bridge_relay")
        if relay is not None:
            await relay.drain()
        await self.container.dispatcher.drain()
        # The platform's mail goes out after its commits, in tasks of its own (``mail_outbox``).
        await self.container.platform_services.db.settle()


def service_settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        data_dir=tmp_path / "var",
        public_base_url="http://127.0.0.1:8000",
    )


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    clock = ManualClock()
    sender = RecordingSender(channel="test")
    container = await build_container(service_settings(tmp_path), clock=clock, extra_senders={"test": sender})
    chat = ChatHarness(container.engine, container.dispatcher, sender, clock)
    yield Service(container, chat, clock)
    await container.stop()
