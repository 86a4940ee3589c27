"""Delivers outbox messages to Telegram, one Bot API call per rendered part.

Telegram allows about one message per second in a private chat: the sender spaces the parts
of one chat itself. A 429 carries ``retry_after``, which goes back to the outbox so that the
whole dispatcher is not blocked while one chat waits.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta

from telegram import Bot, InputFile
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram.render import SendDocument, SendPhoto, SendText, SendTyping, TelegramOp, render
from bot.engine.messages import FileRef, OutboundMessage
from bot.engine.ports import MediaStore
from bot.errors import DeliveryFailed


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        # PTB 22 announces that the attribute becomes a timedelta; both forms are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def delivery_failure(exc: TelegramError) -> DeliveryFailed:
    """Which Bot API errors a retry can cure."""
    if isinstance(exc, RetryAfter):
        return DeliveryFailed("telegram flood control", retry_after=retry_after_seconds(exc))
    if isinstance(exc, Forbidden):
        return DeliveryFailed(f"telegram refused: {exc.message}", retryable=False)
    if isinstance(exc, BadRequest):
        return DeliveryFailed(f"telegram bad request: {exc.message}", retryable=False)
    if isinstance(exc, InvalidToken):
        return DeliveryFailed("telegram token rejected", retryable=True)
    return DeliveryFailed(f"telegram error: {exc.message}")


class ChatPacer:
    """Keeps sends to one chat at least ``interval`` seconds apart."""

    def __init__(
        self,
        interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._last: dict[int, float] = {}

    async def wait_turn(self, chat_id: int) -> None:
        last = self._last.get(chat_id)
        if last is not None:
            remaining = self.interval - (self._monotonic() - last)
            if remaining > 0:
                await self._sleep(remaining)
        self._last[chat_id] = self._monotonic()
        if len(self._last) > 10_000:
            # forget chats idle for longer than the interval: they need no pacing
            cutoff = self._monotonic() - self.interval
            self._last = {c: t for c, t in self._last.items() if t > cutoff}


class TelegramSender:
    channel = "telegram"

    def __init__(self, bot: Bot, media: MediaStore, pacer: ChatPacer) -> None:
        self.bot = bot
        self.media = media
        self.pacer = pacer

    async def send(self, message: OutboundMessage) -> None:
        chat_id = int(message.key.user_id)
        for op in render(message.reply):
            await self.pacer.wait_turn(chat_id)
            try:
                await self._call(chat_id, op)
            except TelegramError as exc:
                raise delivery_failure(exc) from exc

    async def _upload(self, file: FileRef) -> InputFile:
        data = await self.media.get(file.media_id)
        return InputFile(data, filename=file.filename)

    async def _call(self, chat_id: int, op: TelegramOp) -> None:
        if isinstance(op, SendText):
            await self.bot.send_message(chat_id, op.text, reply_markup=op.keyboard)
        elif isinstance(op, SendPhoto):
            await self.bot.send_photo(chat_id, await self._upload(op.file), caption=op.caption or None)
        elif isinstance(op, SendDocument):
            await self.bot.send_document(chat_id, await self._upload(op.file), caption=op.caption or None)
        elif isinstance(op, SendTyping):
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
