"""The WeChat channel as the composition root sees it: a router, a sender, a passive window,
and a lifecycle (token check, housekeeping, background work finished on shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.base import ChannelLifecycle
from bot.channels.notices import ChannelNotices
from bot.channels.wechat.api import WeChatApi, WeChatApiError
from bot.channels.wechat.crypto import MessageCipher
from bot.channels.wechat.errors import WeChatError
from bot.channels.wechat.files import FileLinks
from bot.channels.wechat.passive import PassiveAnswers
from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.receiver import WeChatReceiver
from bot.channels.wechat.replay import NonceLedger
from bot.channels.wechat.router import make_router
from bot.channels.wechat.sender import WeChatSender
from bot.channels.wechat.settings import WeChatSettings
from bot.channels.wechat.subscriptions import SubscriptionConsents
from bot.channels.wechat.token import StableTokenProvider
from bot.engine.messages import ConversationKey, OutboundMessage
from bot.engine.ports import Clock, MediaStore, SystemClock
from bot.engine.runtime import Engine, PassiveWindow
from bot.engine.store import ConversationStore
from bot.errors import ConfigError

log = logging.getLogger("sealbot.wechat")

HOUSEKEEPING_SECONDS = 600.0


def passive_window_for(settings: WeChatSettings) -> PassiveWindow:
    """What the Engine needs before the channel exists: hold WeChat replies for the webhook."""
    return PassiveWindow("wechat", hold=timedelta(seconds=settings.passive_hold))


@dataclass(frozen=True)
class WeChatHealth:
    token_valid: bool
    menu_buttons: int | None
    error: str | None

    def lines(self) -> list[str]:
        return [
            f"wechat access token: {'valid' if self.token_valid else 'INVALID'}",
            f"wechat menu: {self.menu_buttons} top-level item(s)"
            if self.menu_buttons is not None
            else "wechat menu: (none)",
            *([f"wechat error: {self.error}"] if self.error else []),
        ]


class WeChatChannel(ChannelLifecycle):
    def __init__(
        self,
        *,
        settings: WeChatSettings,
        engine: Engine,
        store: ConversationStore,
        db: AsyncEngine,
        media: MediaStore,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
        quota: CustomerServiceQuota | None = None,
        transfer_to_kf: Callable[[ConversationKey], bool] | None = None,
    ) -> None:
        """``db`` is the bot database, where the channel keeps its own tables (token, nonces,
        deliveries, quota, consents). The composition root makes ``quota`` first when the
        support desk reads it too; ``transfer_to_kf`` is the desk's rule for hand-offs that go
        to WeChat's own 客服 system."""
        settings.check()
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.passive_window = passive_window_for(settings)
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._owns_http = http is None
        appid = settings.appid
        self.tokens = StableTokenProvider(
            db=db,
            appid=appid,
            secret=settings.secret.get_secret_value(),
            api_base_url=settings.api_base_url,
            http=self._http,
            clock=self.clock.now,
        )
        self.api = WeChatApi(appid=appid, api_base_url=settings.api_base_url, tokens=self.tokens)
        self.quota = quota or CustomerServiceQuota(db, appid, store)
        self.consents = SubscriptionConsents(db, appid)
        self.notices = ChannelNotices(engine.catalog, store)
        link_key = hashlib.sha256(
            b"wechat-file-links:"
            + settings.token.get_secret_value().encode()
            + settings.secret.get_secret_value().encode()
        ).digest()
        self.links = FileLinks(link_key, settings.public_url, timedelta(hours=settings.file_link_ttl_hours))
        self.sender = WeChatSender(
            settings=settings,
            api=self.api,
            quota=self.quota,
            consents=self.consents,
            media=media,
            notices=self.notices,
            file_url=self.links.url,
            clock=self.clock,
        )
        cipher = (
            MessageCipher(
                settings.token.get_secret_value(), settings.encoding_aes_key.get_secret_value(), appid
            )
            if settings.safe_mode
            else None
        )
        self.nonces = NonceLedger(db, store, appid, timedelta(seconds=settings.timestamp_window))
        self.passive = PassiveAnswers(db, store, appid, wake=self._wake(engine), box=engine.box)
        self.receiver = WeChatReceiver(
            settings=settings,
            engine=engine,
            media=media,
            api=self.api,
            nonces=self.nonces,
            passive=self.passive,
            quota=self.quota,
            consents=self.consents,
            sender=self.sender,
            notices=self.notices,
            cipher=cipher,
            clock=self.clock,
            background=self._spawn,
            transfer_to_kf=transfer_to_kf,
        )
        self.router: APIRouter = make_router(self.receiver, self.links, media, self.clock)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._housekeeping: asyncio.Task[None] | None = None

    @staticmethod
    def _wake(engine: Engine) -> Callable[[list[OutboundMessage]], None]:
        # replies released from the passive hold are due now: whoever wakes on a commit
        # (the outbox dispatcher) should look again
        def wake(messages: list[OutboundMessage]) -> None:
            for callback in engine.hooks.after_commit:
                callback(messages)

        return wake

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("wechat background work failed", exc_info=task.exception())

    async def _start(self) -> None:
        """Fetches (or finds) the shared access token, so bad credentials show at start."""
        try:
            await self.tokens.get()
        except WeChatError as exc:
            log.error("wechat access token unavailable at start: %s", exc)
        self._housekeeping = asyncio.create_task(self._tidy(), name="wechat-housekeeping")

    async def _stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
            self._housekeeping = None
        if self._tasks:
            # let in-flight messages commit (their replies then go through the outbox), then
            # cancel what is still running: nothing outlives the channel
            _, late = await asyncio.wait(set(self._tasks), timeout=10)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        if self._owns_http:
            await self._http.aclose()

    async def drain_background(self) -> None:
        """Wait for work that outlived its webhook request (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*set(self._tasks), return_exceptions=True)

    async def _tidy(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            now = self.clock.now()
            try:
                await self.nonces.forget_before(now - timedelta(seconds=2 * self.settings.timestamp_window))
                await self.passive.forget_before(now - timedelta(days=1))
            except Exception:
                log.exception("wechat housekeeping failed")

    async def publish_menu(self) -> dict[str, Any]:
        menu = self.settings.menu()
        validate_menu(menu)
        await self.api.create_menu(menu)
        return menu

    async def health(self) -> WeChatHealth:
        try:
            await self.tokens.check()
        except WeChatError as exc:
            return WeChatHealth(False, None, str(exc))
        try:
            menu = await self.api.get_menu()
        except WeChatApiError as exc:
            return WeChatHealth(True, None, str(exc))
        buttons = (menu or {}).get("menu", {}).get("button", []) if isinstance(menu, dict) else []
        return WeChatHealth(True, len(buttons) if buttons else None, None)


def validate_menu(menu: dict[str, Any]) -> None:
    """WeChat's limits: at most 3 top-level items and 5 sub-items each, short labels."""
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ConfigError("WECHAT_MENU_FILE: the menu needs 1 to 3 top-level buttons")
    for button in buttons:
        name = str(button.get("name", ""))
        if not name or len(name.encode()) > 16:
            raise ConfigError(f"WECHAT_MENU_FILE: top-level label {name!r} must be 1-16 bytes")
        subs = button.get("sub_button", [])
        if len(subs) > 5:
            raise ConfigError(f"WECHAT_MENU_FILE: {name!r} has more than 5 sub-items")
        for sub in subs:
            label = str(sub.get("name", ""))
            if not label or len(label.encode()) > 60:
                raise ConfigError(f"WECHAT_MENU_FILE: sub-item label {label!r} must be 1-60 bytes")
            if sub.get("type") == "click" and not sub.get("key"):
                raise ConfigError(f"WECHAT_MENU_FILE: click item {label!r} needs a key")
