"""The form on aiogram 3's FSM with MemoryStorage; the Bot API answered in memory by
``CannedSession``, updates fed to ``Dispatcher.feed_update``."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.base import BaseSession
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import GetMe, SendMessage, TelegramMethod
from aiogram.types import Chat, Message, Update, User

from bench.ptb_forms import CHECKS, PROMPTS
from bench.workload import FIELDS, BadAnswer, UserScript, mask, run_users
from bot.gc_settings import CollectorPauses

BOT_USER = User(id=1, is_bot=True, first_name="bench", username="bench_bot")


class CannedSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> Any:
        if isinstance(method, SendMessage):
            self.sent += 1
            return Message(
                message_id=self.sent,
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                from_user=BOT_USER,
                text=method.text,
            )
        if isinstance(method, GetMe):
            return BOT_USER
        return True

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - aiogram's signature
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    async def close(self) -> None:
        return None


class Form(StatesGroup):
    company = State()
    credit_code = State()
    legal_rep = State()
    legal_rep_id = State()
    phone = State()
    years = State()
    recipient = State()
    address = State()
    confirm = State()


def build_router() -> Router:
    router = Router()
    states = [getattr(Form, name) for name in FIELDS]

    @router.message(Command("apply"))
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Form.company)
        await message.answer(PROMPTS["company"])

    def answer(index: int) -> Any:
        field = FIELDS[index]

        async def handle(message: Message, state: FSMContext) -> None:
            try:
                value = CHECKS[field](message.text or "")
            except BadAnswer:
                await message.answer("输入有误，请重新输入。" + PROMPTS[field])
                return
            data = await state.update_data({field: value})
            await state.set_state(states[index + 1])
            if FIELDS[index + 1] == "confirm":
                lines = [
                    f"{n}：{mask(data[n]) if n in ('legal_rep_id', 'phone') else data[n]}"
                    for n in FIELDS[:-1]
                ]
                await message.answer("请核对以下信息：\n" + "\n".join(lines) + "\n回复 1 确认提交")
            else:
                await message.answer(PROMPTS[FIELDS[index + 1]])

        return handle

    for i in range(len(FIELDS) - 1):
        router.message.register(answer(i), StateFilter(states[i]))

    @router.message(StateFilter(Form.confirm))
    async def confirm(message: Message, state: FSMContext) -> None:
        if message.text != "1":
            await message.answer("回复 1 确认提交")
            return
        await state.clear()
        await message.answer("申请已提交，请等待审核。")

    return router


async def run(user_scripts: list[UserScript], *, concurrency: int) -> dict[str, Any]:
    session = CannedSession()
    bot = Bot("123:bench", session=session)
    dp = Dispatcher(storage=MemoryStorage())
    dp.include_router(build_router())
    updates = {}
    for s in user_scripts:
        person = User(id=s.user, is_bot=False, first_name=f"u{s.user}")
        chat = Chat(id=s.user, type="private")
        for i, text in enumerate(s.messages):
            message = Message(
                message_id=i + 1, date=datetime.now(UTC), chat=chat, from_user=person, text=text
            )
            updates[(s.user, i)] = Update(update_id=s.user * 100 + i, message=message)

    async def send(user: int, index: int, _text: str) -> None:
        await dp.feed_update(bot, updates[(user, index)])

    collector = CollectorPauses()
    collector.start()
    started = time.perf_counter()
    await run_users(user_scripts, send, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    return {
        "messages": len(updates),
        "replies": session.sent,
        "seconds": elapsed,
        "gc_seconds": collector.stop(),
    }
