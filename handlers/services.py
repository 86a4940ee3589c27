"""What flow code depends on, reached as ``services(ctx)``; built by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import LoginRequired
from bot.engine.messages import ConversationKey
from platform_client.client import PlatformClient


@dataclass
class HandlerServices:
    platform: PlatformClient
    public_base_url: str = "http://127.0.0.1:8000"
    # Optional collaborators wired when their packages are present (UKey bridge hub, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    # The console SMS provider of the embedded default shows codes on a local page; tell the user.
    sms_dev_page: str | None = None
    # Makes the single-use link of the secure password page: (conversation, purpose, nonce,
    # expiry) -> URL. Passwords are typed only there, never in a chat.
    password_page: Callable[[ConversationKey, str, str, datetime], str] | None = None
    # Erases what the bot's own stores hold of a deleted account (platform account id) in every
    # conversation bound to it except the one given (the engine is writing it); returns how many
    # stored messages and conversation states were affected.
    forget_account: Callable[[str, ConversationKey], Awaitable[int]] | None = None
    # How long a data export (导出我的信息) can be downloaded; then its file is deleted.
    export_ttl: timedelta = timedelta(hours=24)


def services(ctx: Ctx) -> HandlerServices:
    found = ctx.services
    if not isinstance(found, HandlerServices):
        raise TypeError("the engine was built without HandlerServices")
    return found


def token(ctx: Ctx) -> str:
    """The account token of the logged-in user. Without one (logged out while a process was put
    aside, or in another chat) the engine asks for a login and then continues the step."""
    if ctx.session is None:
        raise LoginRequired
    return ctx.session.token
