"""The Telegram channel as the composition root sees it: a router, a sender, a lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from telegram import Bot, BotCommand
from telegram.error import NetworkError, TelegramError

from bot.channels.base import ChannelLifecycle
from bot.channels.notices import ChannelNotices
from bot.channels.telegram.polling import Poller
from bot.channels.telegram.processor import StaffGroupDesk, UpdateProcessor
from bot.channels.telegram.router import make_router
from bot.channels.telegram.sender import ChatPacer, TelegramSender
from bot.channels.telegram.settings import TOKEN_REQUIRED, TelegramSettings
from bot.engine.i18n import LOCALES, Catalog
from bot.engine.ports import Clock, MediaStore
from bot.engine.runtime import Engine, PassiveWindow
from bot.engine.store import ConversationStore
from bot.errors import ConfigError

COMMANDS = ("start", "menu", "help", "cancel")
# Pauses between tries while the Bot API does not answer at start; the last one repeats.
RECONNECT_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

log = logging.getLogger("sealbot.telegram")


def bot_commands(catalog: Catalog, locale: str) -> list[BotCommand]:
    return [BotCommand(name, catalog.get(locale, f"channels.command_{name}")) for name in COMMANDS]


@dataclass(frozen=True)
class TelegramHealth:
    token_valid: bool
    username: str | None
    webhook_url: str
    webhook_set: bool
    pending_updates: int
    last_error: str | None

    def lines(self) -> list[str]:
        return [
            f"telegram token: {'valid' if self.token_valid else 'INVALID'}"
            + (f" (@{self.username})" if self.username else ""),
            f"telegram webhook: {self.webhook_url or '(none)'}"
            + (" [set]" if self.webhook_set else " [NOT SET]"),
            f"telegram pending updates: {self.pending_updates}",
            *([f"telegram last error: {self.last_error}"] if self.last_error else []),
        ]


def make_bot(settings: TelegramSettings, **kw: Any) -> Bot:
    token = settings.token.get_secret_value()
    if not token:
        raise ConfigError(TOKEN_REQUIRED)
    return Bot(token, base_url=settings.api_base_url, base_file_url=settings.file_base_url, **kw)


class TelegramChannel(ChannelLifecycle):
    passive_window: PassiveWindow | None = None  # Telegram has no synchronous answer

    def __init__(
        self,
        *,
        settings: TelegramSettings,
        engine: Engine,
        store: ConversationStore,
        media: MediaStore,
        clock: Clock | None = None,
        bot: Bot | None = None,
        staff_desk: StaffGroupDesk | None = None,
    ) -> None:
        """``bot`` is made from ``settings`` unless given (the composition root makes it first,
        for the support desk's staff group, whose updates come back as ``staff_desk``)."""
        self.settings = settings
        self.engine = engine
        self.bot = bot or make_bot(settings)
        self.notices = ChannelNotices(engine.catalog, store)
        self.processor = UpdateProcessor(
            bot=self.bot,
            engine=engine,
            media=media,
            notices=self.notices,
            settings=settings,
            staff_desk=staff_desk,
        )
        self.router: APIRouter = make_router(settings, self.processor)
        self.sender = TelegramSender(self.bot, media, ChatPacer(settings.per_chat_interval))
        self.poller = Poller(self.bot, self.processor, timeout=settings.polling_timeout)
        self._polling = False
        self._connecting: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        """Checks the token (``getMe``, which also names the conversation account) and, in
        polling mode, starts fetching updates.

        A Bot API that does not answer (api.telegram.org unreachable from this network, a local
        Bot API server still starting) does not keep the service from starting: the web chat
        and WeChat go on, Telegram is asked again in the background, and until it answers the
        webhook tells Telegram to deliver later. A token the Bot API refuses still stops the
        start-up: that is a setting to fix, not an outage to wait out."""
        try:
            await self._connect()
        except NetworkError as exc:  # TimedOut is one; InvalidToken is not
            log.warning(
                "telegram: the Bot API does not answer (%s); the service starts without Telegram "
                "and keeps asking",
                exc,
            )
            self._connecting = asyncio.create_task(self._connect_when_it_answers(), name="telegram-connect")

    async def _connect(self) -> None:
        await self.bot.initialize()
        if self.settings.mode == "polling" and not self._polling:
            await self.poller.start()
            self._polling = True

    async def _connect_when_it_answers(self) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)])
            attempt += 1
            try:
                await self._connect()
            except NetworkError as exc:
                log.info("telegram: the Bot API still does not answer (%s)", exc)
                continue
            except TelegramError:
                log.exception("telegram: the Bot API refused the bot; Telegram stays off (TELEGRAM_TOKEN?)")
                return
            log.warning("telegram: the Bot API answers; Telegram is on")
            return

    async def _stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        if self._polling:
            await self.poller.stop()
            self._polling = False
        await self.bot.shutdown()

    async def register(self) -> list[str]:
        """Publishes the webhook (webhook mode) and the command list; returns what was done."""
        done: list[str] = []
        if self.settings.mode == "webhook":
            if not self.settings.public_url or not self.settings.webhook_secret.get_secret_value():
                raise ConfigError("TELEGRAM_PUBLIC_URL and TELEGRAM_WEBHOOK_SECRET: required for the webhook")
            await self.bot.set_webhook(
                self.settings.webhook_url,
                secret_token=self.settings.webhook_secret.get_secret_value(),
                allowed_updates=["message", "edited_message", "callback_query"],
            )
            done.append(f"webhook set to {self.settings.webhook_url}")
        else:
            await self.bot.delete_webhook()
            done.append("webhook removed (polling mode)")
        catalog = self.engine.catalog
        await self.bot.set_my_commands(bot_commands(catalog, "zh-CN"))
        for locale in LOCALES:
            if locale != "zh-CN":
                await self.bot.set_my_commands(bot_commands(catalog, locale), language_code=locale[:2])
        done.append(f"commands set: {', '.join('/' + c for c in COMMANDS)}")
        return done

    async def health(self) -> TelegramHealth:
        try:
            me = await self.bot.get_me()
        except TelegramError as exc:
            return TelegramHealth(False, None, "", False, 0, str(exc))
        info = await self.bot.get_webhook_info()
        expected = self.settings.webhook_url if self.settings.mode == "webhook" else ""
        return TelegramHealth(
            token_valid=True,
            username=me.username,
            webhook_url=info.url,
            webhook_set=bool(info.url) and info.url == expected,
            pending_updates=info.pending_update_count,
            last_error=info.last_error_message,
        )
