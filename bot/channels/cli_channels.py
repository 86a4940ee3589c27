"""Channel commands for the ``sealbot`` CLI: publish the WeChat menu, register the Telegram
webhook and commands, and print each channel's health.

``add_channel_commands(subparsers)`` adds ``wechat-menu``, ``telegram-webhook`` and
``channels-health``; each sets ``func`` to a coroutine function taking the parsed arguments.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.error import TelegramError

from bot.channels.telegram.channel import TelegramHealth, bot_commands, make_bot
from bot.channels.telegram.settings import TelegramSettings
from bot.channels.wechat.api import WeChatApi, WeChatApiError
from bot.channels.wechat.channel import WeChatHealth, validate_menu
from bot.channels.wechat.errors import WeChatError
from bot.channels.wechat.settings import WeChatSettings
from bot.channels.wechat.tables import wechat_tokens
from bot.channels.wechat.token import StableTokenProvider, TokenUnavailable
from bot.engine.i18n import LOCALES, Catalog
from bot.testing import ENGINE_LOCALES
from dbkit.engine import make_engine


async def _wechat_api(settings: WeChatSettings, db: AsyncEngine, http: httpx.AsyncClient) -> WeChatApi:
    async with db.begin() as conn:
        await conn.run_sync(lambda sync: wechat_tokens.create(sync, checkfirst=True))
    tokens = StableTokenProvider(
        db=db,
        appid=settings.appid,
        secret=settings.secret.get_secret_value(),
        api_base_url=settings.api_base_url,
        http=http,
    )
    return WeChatApi(appid=settings.appid, api_base_url=settings.api_base_url, tokens=tokens)


async def wechat_menu(
    settings: WeChatSettings, database_url: str, *, out: Callable[[str], None] = print
) -> int:
    """Publishes the custom menu from WECHAT_MENU_FILE (or the default menu)."""
    menu = settings.menu()
    validate_menu(menu)
    db = make_engine(database_url)
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            api = await _wechat_api(settings, db, http)
            await api.create_menu(menu)
    except WeChatError as exc:
        out(f"wechat menu NOT published: {exc}")
        return 1
    finally:
        await db.dispose()
    out(f"wechat menu published: {', '.join(b['name'] for b in menu['button'])}")
    return 0


async def telegram_webhook(settings: TelegramSettings, *, out: Callable[[str], None] = print) -> int:
    """Sets (webhook mode) or removes (polling mode) the webhook and registers the commands."""
    catalog = Catalog([ENGINE_LOCALES])
    bot = make_bot(settings)
    try:
        async with bot:
            if settings.mode == "webhook":
                await bot.set_webhook(
                    settings.webhook_url,
                    secret_token=settings.webhook_secret.get_secret_value() or None,
                    allowed_updates=["message", "edited_message", "callback_query"],
                )
                out(f"telegram webhook set: {settings.webhook_url}")
            else:
                await bot.delete_webhook()
                out("telegram webhook removed (polling mode)")
            await bot.set_my_commands(bot_commands(catalog, "zh-CN"))
            for locale in LOCALES:
                if locale != "zh-CN":
                    await bot.set_my_commands(bot_commands(catalog, locale), language_code=locale[:2])
            out("telegram commands set: /start /menu /help /cancel")
    except TelegramError as exc:
        out(f"telegram registration failed: {exc}")
        return 1
    return 0


async def telegram_health(settings: TelegramSettings) -> TelegramHealth:
    bot = make_bot(settings)
    try:
        me = await bot.get_me()
        info = await bot.get_webhook_info()
    except TelegramError as exc:
        return TelegramHealth(False, None, "", False, 0, str(exc))
    finally:
        await bot.shutdown()
    expected = settings.webhook_url if settings.mode == "webhook" else ""
    return TelegramHealth(
        token_valid=True,
        username=me.username,
        webhook_url=info.url,
        webhook_set=bool(expected) and info.url == expected,
        pending_updates=info.pending_update_count,
        last_error=info.last_error_message,
    )


async def wechat_health(settings: WeChatSettings, database_url: str) -> WeChatHealth:
    db = make_engine(database_url)
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            api = await _wechat_api(settings, db, http)
            try:
                await api.tokens.check()
            except TokenUnavailable as exc:
                return WeChatHealth(False, None, str(exc))
            try:
                menu = await api.get_menu()
            except WeChatApiError as exc:
                if exc.errcode == 46003:  # no menu yet
                    return WeChatHealth(True, None, None)
                return WeChatHealth(True, None, str(exc))
    finally:
        await db.dispose()
    buttons = menu.get("menu", {}).get("button", []) if isinstance(menu, dict) else []
    return WeChatHealth(True, len(buttons) or None, None)


async def channels_health(
    wechat: WeChatSettings | None,
    telegram: TelegramSettings | None,
    database_url: str,
    *,
    out: Callable[[str], None] = print,
) -> int:
    """Prints each enabled channel's health; 1 when one is unhealthy."""
    healthy = True
    if wechat is not None and wechat.enabled:
        report = await wechat_health(wechat, database_url)
        healthy &= report.token_valid
        for line in report.lines():
            out(line)
    if telegram is not None and telegram.enabled:
        tg = await telegram_health(telegram)
        healthy &= tg.token_valid and (tg.webhook_set or telegram.mode == "polling")
        for line in tg.lines():
            out(line)
    if (wechat is None or not wechat.enabled) and (telegram is None or not telegram.enabled):
        out("no channel enabled (set WECHAT_ENABLED=true or TELEGRAM_ENABLED=true)")
    return 0 if healthy else 1


def add_channel_commands(subparsers: Any) -> None:
    """Adds the channel commands; each ``handler(settings, args)`` returns the exit status, as
    ``bot.cli.main`` calls it (``settings`` is the bot's, for its database URL)."""

    def handler(
        command: Callable[[Any], Coroutine[Any, Any, int]],
    ) -> Callable[[Any, argparse.Namespace], int]:
        def run(settings: Any, _args: argparse.Namespace) -> int:
            return asyncio.run(command(settings))

        return run

    subparsers.add_parser(
        "wechat-menu", help="publish the WeChat custom menu from configuration"
    ).set_defaults(handler=handler(lambda settings: wechat_menu(WeChatSettings(), settings.database_url)))
    subparsers.add_parser("telegram-webhook", help="set the Telegram webhook and bot commands").set_defaults(
        handler=handler(lambda settings: telegram_webhook(TelegramSettings()))
    )
    subparsers.add_parser(
        "channels-health", help="each channel's token, webhook and pending updates"
    ).set_defaults(
        handler=handler(
            lambda settings: channels_health(WeChatSettings(), TelegramSettings(), settings.database_url)
        )
    )
