"""Delivers outbox messages through the customer-service (客服) API, within its quota.

Inside the user's allowance a message goes out as msgmenu, text or image. What does not fit
is kept in the backlog and delivered when the user next writes; the last message that still
fits tells them how many are waiting. Outside any allowance, a proactive message (a status
push or reminder, not an answer) goes as a one-time subscription message the user accepted,
or as a template message, when configured; otherwise it waits in the backlog too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.channels.notices import ChannelNotices
from bot.channels.wechat.api import (
    DAILY_LIMIT,
    OUTSIDE_WINDOW,
    QUOTA_COUNT_EXCEEDED,
    TOKEN_ERRORS,
    WeChatApi,
    WeChatApiError,
)
from bot.channels.wechat.errors import WeChatError
from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.render import (
    CsImage,
    CsMenu,
    CsOp,
    CsText,
    FileLinker,
    customer_service_ops,
    numbered,
)
from bot.channels.wechat.settings import WeChatSettings
from bot.channels.wechat.subscriptions import SubscriptionConsents
from bot.engine.messages import ConversationKey, FileRef, OutboundMessage, Reply, ReplyKind
from bot.engine.ports import Clock, MediaStore
from bot.errors import DeliveryFailed, DeliveryParked

log = logging.getLogger("sealbot.wechat")

PERMANENT = frozenset({40003, 43004, 43019, 48001})  # bad openid, unfollowed, blocked, no permission


class WeChatSender:
    channel = "wechat"

    def __init__(
        self,
        *,
        settings: WeChatSettings,
        api: WeChatApi,
        quota: CustomerServiceQuota,
        consents: SubscriptionConsents,
        media: MediaStore,
        notices: ChannelNotices,
        file_url: Any,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.api = api
        self.quota = quota
        self.consents = consents
        self.media = media
        self.notices = notices
        self._file_url = file_url
        self.clock = clock

    async def linker(self, key: ConversationKey, replies: Sequence[Reply] | None = None) -> FileLinker:
        """Renders file replies as links; the label is in the user's language, which costs a
        read of the conversation, so it is looked up only when ``replies`` hold a file."""
        if replies is not None and not any(r.file is not None for r in replies):
            return self.linker_in(None)
        return self.linker_in(await self.notices.locale_of(key))

    def linker_in(self, locale: str | None) -> FileLinker:
        """The linker for a user whose locale is known (None: no file will be linked)."""
        label = (
            "{name}"  # never shown: there is no file to link
            if locale is None
            else self.notices.catalog.get(locale, "channels.file_link", name="{name}")
        )
        return FileLinker(lambda file: str(self._file_url(file, self.clock.now())), label)

    async def send(self, message: OutboundMessage) -> None:
        await self.say(message.key, message.reply, in_reply_to=message.in_reply_to)

    async def say(self, key: ConversationKey, reply: Reply, *, in_reply_to: str | None) -> None:
        """One reply through the customer-service API, within the quota; also for texts the
        channel says itself (a welcome, a notice) when the passive window was missed."""
        openid = key.user_id
        now: datetime = self.clock.now()
        ops = customer_service_ops(reply, await self.linker(key, [reply]))
        if not ops:
            return
        allowance = await self.quota.get(openid, now)
        left = allowance.left(now) if allowance else 0
        if left == 0:
            if in_reply_to is None and await self._proactive(key, reply, now):
                return
            await self.quota.defer(openid, reply, now)
            raise DeliveryParked("wechat: outside the customer-service allowance, kept until the user writes")
        if left <= len(ops):
            # the last slot is kept for saying that messages wait: the user cannot know
            # otherwise that writing again brings them
            await self.quota.defer(openid, reply, now)
            await self._tell_waiting(key, now)
            raise DeliveryParked("wechat: customer-service allowance used up, kept until the user writes")
        await self._deliver(key, reply, ops, now)

    async def _deliver(self, key: ConversationKey, reply: Reply, ops: list[CsOp], now: datetime) -> None:
        openid = key.user_id
        for op in ops:
            if await self.quota.take(openid, now) is None:
                await self.quota.defer(openid, reply, now)
                return
            try:
                await self._call(openid, op)
            except WeChatApiError as exc:
                if exc.errcode in (QUOTA_COUNT_EXCEEDED, OUTSIDE_WINDOW):
                    # WeChat's count is the truth: believe it and keep the message for later
                    await self.quota.exhaust(openid, closed=exc.errcode == OUTSIDE_WINDOW, now=now)
                    await self.quota.defer(openid, reply, now)
                    return
                await self.quota.give_back(openid)
                raise delivery_failure(exc) from exc
            except WeChatError as exc:  # the token, or WeChat out of reach
                await self.quota.give_back(openid)
                raise DeliveryFailed(str(exc)) from exc

    async def _call(self, openid: str, op: CsOp) -> None:
        if isinstance(op, CsText):
            await self.api.send_text(openid, op.text)
        elif isinstance(op, CsMenu):
            await self.api.send_msg_menu(openid, op.head, list(op.items), op.tail)
        elif isinstance(op, CsImage):
            media_id = await self.api.upload_image(
                await self.media.get(op.file.media_id), _image_name(op.file)
            )
            await self.api.send_image(openid, media_id)

    async def _tell_waiting(self, key: ConversationKey, now: datetime) -> None:
        waiting = len(await self.quota.backlog(key.user_id))
        text = await self.notices.text(key, "more_waiting", count=waiting)
        if await self.quota.take(key.user_id, now) is None:
            return
        try:
            await self.api.send_text(key.user_id, text)
        except WeChatError as exc:
            log.info("could not tell %s about waiting messages: %s", key, exc)

    async def flush_backlog(self, key: ConversationKey) -> int:
        """After the user opened a new allowance: deliver what waited, oldest first."""
        openid = key.user_id
        sent = 0
        if not await self.quota.has_backlog(openid):
            return sent
        for backlog_id, reply in await self.quota.backlog(openid):
            now = self.clock.now()
            allowance = await self.quota.get(openid, now)
            left = allowance.left(now) if allowance else 0
            ops = customer_service_ops(reply, await self.linker(key))
            remaining = len(await self.quota.backlog(openid))
            # keep the last slot for the notice when the rest will not fit
            if left < len(ops) or (remaining > 1 and left == len(ops)):
                if left > 0:
                    await self._tell_waiting(key, now)
                break
            if not await self.quota.drop(backlog_id):
                continue  # another worker delivers it
            try:
                await self._deliver(key, reply, ops, now)
            except DeliveryFailed as exc:
                log.warning("backlog message for %s not delivered: %s", key, exc.reason)
                await self.quota.defer(openid, reply, now)
                break
            sent += 1
        return sent

    async def _proactive(self, key: ConversationKey, reply: Reply, now: datetime) -> bool:
        """A status push or reminder outside the allowance; True when it was sent."""
        if reply.kind not in (ReplyKind.TEXT, ReplyKind.LINK):
            return False
        text = numbered(reply.text, reply.options)[:200]
        settings = self.settings
        try:
            if settings.subscribe_template_id and await self.consents.spend(
                key.user_id, settings.subscribe_template_id, now
            ):
                title = await self.notices.text(key, "reminder_title")
                await self.api.send_subscribe_template(
                    key.user_id,
                    settings.subscribe_template_id,
                    settings.subscribe_scene,
                    title,
                    text,
                    reply.url,
                )
                return True
            if settings.status_template_id:
                data = {settings.status_template_field: {"value": text}}
                await self.api.send_template(key.user_id, settings.status_template_id, data, reply.url)
                return True
        except WeChatApiError as exc:
            raise delivery_failure(exc) from exc
        except WeChatError as exc:
            raise DeliveryFailed(str(exc)) from exc
        return False


def delivery_failure(exc: WeChatApiError) -> DeliveryFailed:
    if exc.errcode in PERMANENT:
        return DeliveryFailed(f"wechat refused: {exc.errcode}", retryable=False)
    if exc.errcode == DAILY_LIMIT:
        return DeliveryFailed("wechat daily API limit", retry_after=3600.0)
    if exc.errcode in TOKEN_ERRORS:
        return DeliveryFailed("wechat access token rejected")
    return DeliveryFailed(str(exc))


def _image_name(file: FileRef) -> str:
    extension = {"image/png": ".png", "image/gif": ".gif"}.get(file.content_type, ".jpg")
    return file.filename if file.filename.endswith(extension) else f"{file.filename}{extension}"
