"""The Telegram staff group as a second support desk.

Each conversation that reaches staff gets one forum topic in the staff supergroup (the bot
needs ``can_manage_topics``). What the user writes is mirrored into the topic; what staff write
in the topic reaches the user in their own channel, through the same desk actions as the web
console (the first staff member to answer claims the conversation). A topic closed by staff is
reopened when the user writes again.

The Telegram channel owns the webhook: it hands updates from the staff group to
``handle_group_update`` (see the report for the one line it needs).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from telegram import Bot, InputFile, Message, Update
from telegram.error import TelegramError

from bot.engine.media import sniff
from bot.engine.messages import ConversationKey
from bot.errors import ChannelError
from bot.support.models import TelegramTopic, TicketState
from bot.support.relay import DeskNote, NoteKind
from bot.support.service import AlreadyClaimed, DeskError, SupportDesk

log = logging.getLogger("sealbot.support.telegram")

SOURCE = "telegram"
TOPIC_NAME_LIMIT = 128  # Bot API limit for forum topic names
COMMANDS = {"claim", "release", "handback", "resolve"}

STATUS_LINES = {
    NoteKind.OPENED: "🆕 用户请求人工客服{detail}",
    NoteKind.CLAIMED: "✅ {agent} 已接入",
    NoteKind.RELEASED: "↩️ {agent} 已放回队列",
    NoteKind.HANDED_BACK: "🤖 已交还智能助手（{detail}）",
    NoteKind.ESCALATED: "⚠️ 用户已等待 {detail} 分钟未获回复",
}


class TelegramDeskError(ChannelError):
    pass


class TelegramDesk:
    name = "telegram"

    def __init__(self, *, bot: Bot, chat_id: int, desk: SupportDesk) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.desk = desk

    # ---- the desk relay: conversation -> topic -------------------------------------------------

    async def note(self, note: DeskNote) -> None:
        if note.kind is NoteKind.STAFF and note.source == SOURCE:
            return  # the staff member wrote it in the topic: it is there already
        topic = await self._topic_for(note.key, create=note.kind in (NoteKind.OPENED, NoteKind.USER))
        if topic is None:
            return
        try:
            if note.kind is NoteKind.USER and topic.closed:
                await self.bot.reopen_forum_topic(self.chat_id, int(topic.thread_id))
                await self._set_closed(note.key, False)
            await self._post(int(topic.thread_id), note)
        except TelegramError as exc:
            raise TelegramDeskError(f"telegram desk: {exc.message}") from exc

    async def _post(self, thread_id: int, note: DeskNote) -> None:
        if note.kind is NoteKind.USER:
            if note.file is not None:
                data = await self.desk.engine.media.get(note.file.media_id)
                await self.bot.send_document(
                    self.chat_id,
                    InputFile(data, filename=note.file.filename),
                    caption="👤 用户发送的文件",
                    message_thread_id=thread_id,
                )
            if note.text:
                await self.bot.send_message(self.chat_id, f"👤 {note.text}", message_thread_id=thread_id)
            return
        if note.kind is NoteKind.STAFF:
            text = f"💬 {note.agent}：{note.text}" if note.text else f"💬 {note.agent} 发送了文件"
            await self.bot.send_message(self.chat_id, text, message_thread_id=thread_id)
            return
        template = STATUS_LINES.get(note.kind)
        if template is None:
            return
        detail = f"：{note.text}" if note.kind is NoteKind.OPENED and note.text else note.text
        text = template.format(agent=note.agent or "", detail=detail)
        await self.bot.send_message(self.chat_id, text, message_thread_id=thread_id)

    async def _topic_for(self, key: ConversationKey, *, create: bool) -> TelegramTopic | None:
        async with self.desk.sessions() as session:
            topic = await session.get(TelegramTopic, str(key))
        if topic is not None or not create:
            return topic
        name = f"{key.channel} · {key.user_id}"[:TOPIC_NAME_LIMIT]
        try:
            created = await self.bot.create_forum_topic(self.chat_id, name)
        except TelegramError as exc:
            raise TelegramDeskError(f"cannot create a topic: {exc.message}") from exc
        topic = TelegramTopic(
            conversation=str(key),
            chat_id=self.chat_id,
            thread_id=created.message_thread_id,
            closed=False,
            created_at=self.desk.now(),
        )
        try:
            async with self.desk.sessions() as session, session.begin():
                session.add(topic)
        except IntegrityError:
            # Another worker made one a moment ago: use theirs (ours stays empty).
            async with self.desk.sessions() as session:
                return await session.get(TelegramTopic, str(key))
        return topic

    async def _set_closed(self, key: ConversationKey, closed: bool) -> None:
        async with self.desk.sessions() as session, session.begin():
            await session.execute(
                sa.update(TelegramTopic).where(TelegramTopic.conversation == str(key)).values(closed=closed)
            )

    # ---- staff group updates -> conversation ---------------------------------------------------

    async def handle_group_update(self, update: Update) -> bool:
        """Whether the update belonged to the staff group (handled, or deliberately ignored).
        The Telegram channel calls this before its own handling of an update."""
        message = update.message
        if message is None or message.chat.id != self.chat_id:
            return False
        thread_id = message.message_thread_id
        if thread_id is None:
            return True  # the group's general chat: staff talking among themselves
        key = await self._key_of_thread(thread_id)
        if key is None:
            return True
        if message.forum_topic_closed is not None:
            await self._set_closed(key, True)
            return True
        if message.forum_topic_reopened is not None:
            await self._set_closed(key, False)
            return True
        sender = message.from_user
        if sender is None or sender.is_bot:
            return True
        agent = f"tg:{sender.username or sender.id}"
        try:
            await self._from_staff(key, agent, message, f"tg-desk:{update.update_id}")
        except DeskError as exc:
            await self._say_in_topic(thread_id, f"⛔ {exc.code}")
        return True

    async def _from_staff(self, key: ConversationKey, agent: str, message: Message, dedupe_id: str) -> None:
        thread_id = message.message_thread_id
        assert thread_id is not None
        text = (message.text or message.caption or "").strip()
        command = text[1:].split("@", 1)[0].split(" ", 1)[0].lower() if text.startswith("/") else None
        if command in COMMANDS:
            await self._command(key, agent, command or "")
            return
        ticket = await self.desk.ticket_of(key)
        if ticket is None:
            await self.desk.take_over(key, agent)
        elif ticket.state == TicketState.WAITING:
            try:
                await self.desk.claim(key, agent)
            except AlreadyClaimed as exc:
                await self._say_in_topic(thread_id, f"⛔ 已由 {exc.agent} 接入，消息未发送。")
                return
        elif ticket.agent != agent:
            await self._say_in_topic(thread_id, f"⛔ 已由 {ticket.agent} 接入，消息未发送。")
            return
        document = message.document
        photo = max(message.photo, key=lambda p: p.width * p.height) if message.photo else None
        if document is not None or photo is not None:
            file_id = document.file_id if document is not None else photo.file_id  # type: ignore[union-attr]
            name = (document.file_name if document is not None else None) or "photo.jpg"
            data = bytes(await (await self.bot.get_file(file_id)).download_as_bytearray())
            stored = await self.desk.engine.media.put(data, filename=name, content_type=sniff(data))
            await self.desk.reply_file(key, agent, stored, caption=text, dedupe_id=dedupe_id, source=SOURCE)
        elif text:
            await self.desk.reply_text(key, agent, text, source=SOURCE, dedupe_id=dedupe_id)

    async def _command(self, key: ConversationKey, agent: str, command: str) -> None:
        if command == "claim":
            ticket = await self.desk.ticket_of(key)
            if ticket is None:
                await self.desk.take_over(key, agent)
            else:
                await self.desk.claim(key, agent)
        elif command == "release":
            await self.desk.release(key, agent)
        elif command == "handback":
            await self.desk.hand_back(key, agent)
        elif command == "resolve":
            await self.desk.resolve(key, agent)

    async def _key_of_thread(self, thread_id: int) -> ConversationKey | None:
        async with self.desk.sessions() as session:
            conversation = await session.scalar(
                sa.select(TelegramTopic.conversation).where(
                    TelegramTopic.chat_id == self.chat_id, TelegramTopic.thread_id == thread_id
                )
            )
        return ConversationKey.parse(conversation) if conversation else None

    async def _say_in_topic(self, thread_id: int, text: str) -> None:
        try:
            await self.bot.send_message(self.chat_id, text, message_thread_id=thread_id)
        except TelegramError as exc:
            log.info("telegram desk notice failed: %s", exc)
