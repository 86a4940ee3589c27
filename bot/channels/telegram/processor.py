"""Handles one Telegram update, whether it came by webhook or by long polling.

The engine deduplicates durably per conversation (``u<update_id>``); the small in-process
memory here only keeps a redelivered update from repeating channel notices or downloads.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Protocol

from telegram import Bot, Update
from telegram.error import TelegramError

from bot.channels.notices import ChannelNotices
from bot.channels.telegram.inbound import FileToFetch, ForEngine, Ignored, Notice, decide
from bot.channels.telegram.settings import TelegramSettings
from bot.engine.media import sniff
from bot.engine.messages import Inbound
from bot.engine.ports import MediaStore
from bot.engine.runtime import Engine


class StaffGroupDesk(Protocol):
    """The support desk's side of the staff group (``bot.support.telegram_desk``)."""

    async def handle_group_update(self, update: Update) -> bool: ...


log = logging.getLogger("sealbot.telegram")


class RecentUpdates:
    """The last ``size`` update ids handled by this process."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, update_id: int) -> bool:
        return update_id in self._ids

    def add(self, update_id: int) -> None:
        self._ids[update_id] = None
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)


def _megabytes(limit: int) -> str:
    if limit < 1024 * 1024:
        return f"{limit // 1024} KB"
    return f"{limit / (1024 * 1024):g} MB"


class UpdateProcessor:
    def __init__(
        self,
        *,
        bot: Bot,
        engine: Engine,
        media: MediaStore,
        notices: ChannelNotices,
        settings: TelegramSettings,
        staff_desk: StaffGroupDesk | None = None,
    ) -> None:
        self.bot = bot
        self.engine = engine
        self.media = media
        self.notices = notices
        self.settings = settings
        self.recent = RecentUpdates()
        # The support desk's staff supergroup, when one is configured: its updates are staff
        # replies, not a user's messages to the bot.
        self.staff_desk = staff_desk

    @property
    def account(self) -> str:
        return self.bot.username if self.bot.username else str(self.bot.id)

    @property
    def ready(self) -> bool:
        """Whether the bot knows who it is (``getMe`` has answered): its conversations are
        named by its username, so no update can be handled before."""
        try:
            return bool(self.account)
        except RuntimeError:  # python-telegram-bot: "not properly initialized"
            return False

    async def process(self, data: dict[str, Any]) -> str:
        """Returns what was done, for logs and tests: engine, file, notice, ignored, duplicate."""
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return "ignored"
        if update_id in self.recent:
            return "duplicate"
        try:
            update = Update.de_json(data, self.bot)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("update %s does not parse; ignored", update_id)
            self.recent.add(update_id)
            return "ignored"
        if self.staff_desk is not None and await self.staff_desk.handle_group_update(update):
            self.recent.add(update_id)
            return "desk"
        decision = decide(update, self.account)
        if isinstance(decision, ForEngine):
            await self._for_engine(decision)
            outcome = "engine"
        elif isinstance(decision, FileToFetch):
            outcome = await self._fetch(decision)
        elif isinstance(decision, Notice):
            await self._notice(decision)
            outcome = "notice"
        else:
            assert isinstance(decision, Ignored)
            log.debug("update %s ignored: %s", update_id, decision.reason)
            outcome = "ignored"
        self.recent.add(update_id)
        return outcome

    async def _for_engine(self, decision: ForEngine) -> None:
        if decision.callback_query_id is not None:
            # First, so the user's spinner stops even if handling takes a while.
            await self._quietly(self.bot.answer_callback_query(decision.callback_query_id))
        await self.engine.handle(decision.inbound)
        if decision.callback_message_id is not None:
            # The tapped keyboard is spent: retire it so it cannot be tapped twice.
            await self._quietly(
                self.bot.edit_message_reply_markup(
                    chat_id=decision.chat_id, message_id=decision.callback_message_id, reply_markup=None
                )
            )

    async def _fetch(self, decision: FileToFetch) -> str:
        limit = self.settings.max_file_bytes
        too_large = Notice(decision.key, decision.chat_id, "file_too_large", decision.language_hint)
        if decision.file_size is not None and decision.file_size > limit:
            await self._notice(too_large, limit=_megabytes(limit))
            return "notice"
        try:
            remote = await self.bot.get_file(decision.file_id)
            if remote.file_size is not None and remote.file_size > limit:
                await self._notice(too_large, limit=_megabytes(limit))
                return "notice"
            data = bytes(await remote.download_as_bytearray())
        except TelegramError as exc:
            log.warning("download of %s failed: %s", decision.file_id, exc)
            await self._notice(
                Notice(decision.key, decision.chat_id, "file_unreadable", decision.language_hint)
            )
            return "notice"
        if len(data) > limit:
            await self._notice(too_large, limit=_megabytes(limit))
            return "notice"
        file = await self.media.put(data, filename=decision.filename, content_type=sniff(data))
        await self.engine.handle(
            Inbound.upload(
                decision.key, decision.message_id, file, at=decision.at, language_hint=decision.language_hint
            )
        )
        return "file"

    async def _notice(self, notice: Notice, **params: Any) -> None:
        if not await self.notices.bot_may_speak(notice.key):
            return
        if notice.kind:
            params.setdefault("kind", notice.kind)
        text = await self.notices.text(notice.key, notice.name, hint=notice.language_hint, **params)
        await self._quietly(self.bot.send_message(notice.chat_id, text))

    @staticmethod
    async def _quietly(call: Any) -> None:
        try:
            await call
        except TelegramError as exc:
            # Courtesy calls (answering a query, retiring a keyboard, a notice) may fail when
            # the query is too old or the user blocked the bot; the conversation is unaffected.
            log.info("telegram courtesy call failed: %s", exc)
