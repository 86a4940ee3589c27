"""Long polling for development: no public URL needed, the same processing as the webhook.

The offset only moves past an update once it is handled, so a crash or a storage failure
makes the next ``getUpdates`` return it again, as a webhook retry would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Bot
from telegram.error import RetryAfter, TelegramError

from bot.channels.telegram.processor import UpdateProcessor
from bot.channels.telegram.router import TRANSIENT
from bot.channels.telegram.sender import retry_after_seconds

log = logging.getLogger("sealbot.telegram")

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


class Poller:
    def __init__(
        self, bot: Bot, processor: UpdateProcessor, *, timeout: int, error_pause: float = 2.0
    ) -> None:
        self.bot = bot
        self.processor = processor
        self.timeout = timeout
        self.error_pause = error_pause
        self.offset: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> int:
        """One ``getUpdates`` round; returns how many updates were handled."""
        updates = await self.bot.get_updates(
            offset=self.offset, timeout=self.timeout, allowed_updates=ALLOWED_UPDATES
        )
        handled = 0
        for update in updates:
            data = update.to_dict()
            try:
                await self.processor.process(data)
            except TRANSIENT:
                log.exception("update %s not handled; polling it again", update.update_id)
                break
            except Exception:
                log.exception("update %s failed; skipped", update.update_id)
            self.offset = update.update_id + 1
            handled += 1
        return handled

    async def start(self) -> None:
        # Telegram refuses getUpdates while a webhook is set.
        await self.bot.delete_webhook(drop_pending_updates=False)
        self._task = asyncio.create_task(self._loop(), name="telegram-polling")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll_once()
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
            except TelegramError as exc:
                log.warning("getUpdates failed: %s", exc)
                await asyncio.sleep(self.error_pause)
