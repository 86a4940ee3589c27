"""The form on python-telegram-bot's ConversationHandler, in memory or with PicklePersistence.

The Bot API is answered in memory by ``CannedRequest``; updates are fed straight to
``Application.process_update``. With ``pickle_path`` the conversation states and user data are
persisted; ``durable`` flushes after every update, which is what "answered only after the state
is saved" costs there (PTB's default writes every 60 s and loses what came since on a crash).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)
from telegram.request import BaseRequest, RequestData

from bench.workload import (
    FIELDS,
    BadAnswer,
    UserScript,
    mask,
    run_users,
    valid_credit_code,
    valid_id_number,
    valid_phone,
    valid_text,
    valid_years,
)
from bot.gc_settings import CollectorPauses

BOT_USER = {"id": 1, "is_bot": True, "first_name": "bench", "username": "bench_bot"}
PROMPTS = {
    "company": "请输入企业名称：",
    "credit_code": "请输入统一社会信用代码（18 位）：",
    "legal_rep": "请输入法定代表人姓名：",
    "legal_rep_id": "请输入法定代表人身份证号：",
    "phone": "请输入联系手机号：",
    "years": "请选择证书有效期：1. 1 年 2. 2 年 3. 3 年",
    "recipient": "请输入收件人姓名：",
    "address": "请输入邮寄地址：",
}
CHECKS = {
    "company": valid_text,
    "credit_code": valid_credit_code,
    "legal_rep": valid_text,
    "legal_rep_id": valid_id_number,
    "phone": valid_phone,
    "years": valid_years,
    "recipient": valid_text,
    "address": valid_text,
}


class CannedRequest(BaseRequest):
    """Answers getMe and sendMessage in memory, as Telegram would."""

    def __init__(self) -> None:
        self.sent = 0
        self._message_id = 0

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        result: Any
        if endpoint == "getMe":
            result = BOT_USER
        elif endpoint == "sendMessage":
            self.sent += 1
            self._message_id += 1
            chat_id = int(str(params["chat_id"]))
            result = {
                "message_id": self._message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
        else:
            result = True
        return 200, json.dumps({"ok": True, "result": result}).encode()


def _answer_handler(index: int) -> Any:
    field = FIELDS[index]

    async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message is not None
        assert update.message.text is not None
        data = context.user_data
        assert data is not None
        try:
            data[field] = CHECKS[field](update.message.text)
        except BadAnswer:
            await update.message.reply_text("输入有误，请重新输入。" + PROMPTS[field])
            return index
        following = FIELDS[index + 1]
        if following == "confirm":
            lines = [
                f"{name}：{mask(data[name]) if name in ('legal_rep_id', 'phone') else data[name]}"
                for name in FIELDS[:-1]
            ]
            await update.message.reply_text("请核对以下信息：\n" + "\n".join(lines) + "\n回复 1 确认提交")
        else:
            await update.message.reply_text(PROMPTS[following])
        return index + 1

    return handle


async def _start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    assert update.message is not None
    await update.message.reply_text(PROMPTS["company"])
    return 0


async def _confirm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    assert update.message is not None
    if update.message.text != "1":
        await update.message.reply_text("回复 1 确认提交")
        return len(FIELDS) - 1
    await update.message.reply_text("申请已提交，请等待审核。")
    return ConversationHandler.END


def build(request: CannedRequest, pickle_path: Path | None) -> Application[Any, Any, Any, Any, Any, Any]:
    builder = ApplicationBuilder().token("123:bench").request(request).get_updates_request(CannedRequest())
    if pickle_path is not None:
        builder = builder.persistence(PicklePersistence(pickle_path, update_interval=3600))
    app = builder.build()
    text = filters.TEXT & ~filters.COMMAND
    states: dict[object, list[Any]] = {
        i: [MessageHandler(text, _answer_handler(i))] for i in range(len(FIELDS) - 1)
    }
    states[len(FIELDS) - 1] = [MessageHandler(text, _confirm)]
    app.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("apply", _start)],
            states=states,
            fallbacks=[],
            name="apply",
            persistent=pickle_path is not None,
        )
    )
    return app


def update_json(update_id: int, user: int, text: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": int(datetime.now(UTC).timestamp()),
        "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": f"u{user}"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": message}


async def run(
    user_scripts: list[UserScript], *, concurrency: int, pickle_path: Path | None = None, durable: bool = True
) -> dict[str, Any]:
    request = CannedRequest()
    app = build(request, pickle_path)
    await app.initialize()
    updates = {}
    for s in user_scripts:
        for i, text in enumerate(s.messages):
            uid = s.user * 100 + i
            updates[(s.user, i)] = Update.de_json(update_json(uid, s.user, text), app.bot)

    async def send(user: int, index: int, _text: str) -> None:
        await app.process_update(updates[(user, index)])
        if pickle_path is not None and durable:
            await app.update_persistence()  # the reply is out; make the state it left durable

    collector = CollectorPauses()
    collector.start()
    started = time.perf_counter()
    await run_users(user_scripts, send, concurrency=concurrency)
    if pickle_path is not None:
        await app.update_persistence()
    elapsed = time.perf_counter() - started
    gc_seconds = collector.stop()
    await app.shutdown()
    result: dict[str, Any] = {
        "messages": len(updates),
        "replies": request.sent,
        "seconds": elapsed,
        "gc_seconds": gc_seconds,
    }
    if pickle_path is not None:
        size = pickle_path.stat().st_size  # noqa: ASYNC240 - after timing
        result["bytes_per_conversation"] = size / len(user_scripts)
    return result
