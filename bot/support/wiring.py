"""Builds the support desk on the service's core (``bot.app.Core``): engine, store, database,
platform. The composition root builds it before the channels, which are given its hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

from bot.engine.runtime import Engine
from bot.support.feed import InboxFeed
from bot.support.service import SupportDesk
from bot.support.settings import SupportSettings

if TYPE_CHECKING:
    from telegram import Bot

    from bot.channels.wechat.quota import CustomerServiceQuota
    from bot.core import Core
    from bot.support.auth import ConsoleSession


def attach_hooks(engine: Engine, desk: SupportDesk) -> None:
    engine.hooks.on_handoff = desk.on_handoff
    engine.hooks.on_message_for_staff = desk.on_message_for_staff
    engine.hooks.after_commit.append(desk.after_commit)


def install_support(
    core: Core,
    settings: SupportSettings | None = None,
    *,
    telegram_bot: Bot | None = None,
    wechat_quota: CustomerServiceQuota | None = None,
) -> SupportDesk:
    """Builds the desk on the core's engine, store and database, installs the engine hooks
    and the console router (``desk.router``); returns the desk. With the Telegram bot and
    ``SUPPORT_TELEGRAM_DESK_CHAT_ID`` set, the staff group desk is added (``desk.telegram``, to
    be given to the Telegram channel); with the WeChat channel's quota, the staff view shows
    what is left."""
    from bot.support.auth import PlatformStaffAuthenticator
    from bot.support.records import PlatformCustomerRecords
    from bot.support.router import make_router
    from bot.support.telegram_desk import TelegramDesk
    from bot.support.wechat_quota import WeChatQuotaReader

    settings = settings or SupportSettings()
    desk = SupportDesk(
        engine=core.engine,
        store=core.store,
        db=core.db,
        settings=settings,
        clock=core.engine.clock,
        quotas={"wechat": WeChatQuotaReader(wechat_quota)} if wechat_quota is not None else None,
        feed=InboxFeed(core.bus),
    )
    attach_hooks(core.engine, desk)
    if telegram_bot is not None and settings.telegram_desk_chat_id is not None:
        desk.telegram = TelegramDesk(bot=telegram_bot, chat_id=settings.telegram_desk_chat_id, desk=desk)
        desk.relays.append(desk.telegram)
    desk.router = make_router(
        desk,
        authenticator=PlatformStaffAuthenticator(core.platform),
        records=PlatformCustomerRecords(core.platform),
        media=core.engine.media,
        secure_cookies=settings.cookie_secure,
    )
    return desk


def staff_required(desk: SupportDesk) -> Callable[[Request], Awaitable[ConsoleSession]]:
    """A FastAPI dependency admitting only a logged-in support session, for staff pages that
    other packages contribute (the reminders view); others are sent to the login page."""
    from bot.support.auth import ConsoleSessions
    from bot.support.router import SESSION_COOKIE

    sessions = ConsoleSessions(desk.sessions, lifetime=timedelta(hours=desk.settings.session_hours))

    async def dependency(request: Request) -> ConsoleSession:
        session = await sessions.find(request.cookies.get(SESSION_COOKIE), desk.now())
        if session is None:
            raise HTTPException(status_code=303, headers={"Location": "/support/login"})
        return session

    return dependency
