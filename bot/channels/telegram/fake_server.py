"""A fake Telegram Bot API server for tests and for trying the bot without Telegram.

python-telegram-bot talks to it unchanged (``Bot(token, base_url=<url>/bot,
base_file_url=<url>/file/bot)``). It records every call, keeps webhook, command and update
state like the real server, serves uploaded files through ``getFile``, and can be told to
answer the next calls of a method with a 429 and ``retry_after``.

Run it by hand with ``python -m bot.channels.telegram.fake_server --token T --port 8081``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# values the Bot API takes as plain strings even when they look like numbers or JSON
_STRING_PARAMS = {
    "text", "caption", "url", "secret_token", "callback_query_id", "file_id", "language_code",
    "parse_mode", "name", "description", "short_description", "ip_address", "emoji",
}  # fmt: skip


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    result: Any = None


@dataclass
class StoredFile:
    file_id: str
    data: bytes
    path: str


@dataclass
class FakeTelegram:
    token: str
    bot_id: int = 4242
    username: str = "sealbot_test_bot"
    calls: list[Call] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, StoredFile] = field(default_factory=dict)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # method -> retry_after of the next injected 429s, consumed in order
    flood: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    edited_markups: list[tuple[int, int]] = field(default_factory=list)
    last_webhook_error: str | None = None
    language_code: str = "en"  # of the users the update builders make

    def __post_init__(self) -> None:
        self._message_ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        self._topic_ids = itertools.count(10)
        self._arrived = asyncio.Event()

    # ---- what tests and demos use ---------------------------------------------------------------

    def inject_429(self, method: str, retry_after: int = 3, times: int = 1) -> None:
        self.flood[method].extend([retry_after] * times)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_texts(self, chat_id: int) -> list[str]:
        """The texts the chat received (calls refused with an error are not counted)."""
        return [
            str(c.params.get("text", ""))
            for c in self.calls_of("sendMessage")
            if c.params.get("chat_id") == chat_id and c.result is not None
        ]

    def add_file(self, data: bytes, name: str) -> str:
        file_id = "F" + hashlib.sha256(data).hexdigest()[:24]
        self.files[file_id] = StoredFile(file_id, data, f"documents/{file_id}_{name}")
        return file_id

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def queue_update(self, update: dict[str, Any]) -> None:
        """Make an update available to ``getUpdates`` (long polling)."""
        self.pending.append(update)
        self._arrived.set()

    def user(self, user_id: int) -> dict[str, Any]:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User{user_id}",
            "language_code": self.language_code,
        }

    def _message(self, user_id: int, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": f"User{user_id}"},
            "from": self.user(user_id),
            **content,
        }

    def text_update(self, user_id: int, text: str, *, update_id: int | None = None) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split(" ")[0])}]
        return {"update_id": update_id or self.next_update_id(), "message": self._message(user_id, **content)}

    def document_update(self, user_id: int, data: bytes, name: str, mime: str) -> dict[str, Any]:
        file_id = self.add_file(data, name)
        document = {
            "file_id": file_id, "file_unique_id": file_id[:12], "file_name": name,
            "mime_type": mime, "file_size": len(data),
        }  # fmt: skip
        return {"update_id": self.next_update_id(), "message": self._message(user_id, document=document)}

    def photo_update(self, user_id: int, data: bytes, *, media_group_id: str | None = None) -> dict[str, Any]:
        file_id = self.add_file(data, "photo.jpg")
        sizes = [
            {"file_id": file_id + "s", "file_unique_id": "s" + file_id[:10], "width": 90, "height": 90},
            {
                "file_id": file_id,
                "file_unique_id": file_id[:12],
                "width": 800,
                "height": 600,
                "file_size": len(data),
            },
        ]
        self.files[file_id + "s"] = self.files[file_id]
        extra: dict[str, Any] = {"media_group_id": media_group_id} if media_group_id else {}
        return {"update_id": self.next_update_id(), "message": self._message(user_id, photo=sizes, **extra)}

    def update_with(self, user_id: int, **content: Any) -> dict[str, Any]:
        """A message update with arbitrary content (a sticker, a voice note, ...)."""
        return {"update_id": self.next_update_id(), "message": self._message(user_id, **content)}

    def edited_update(self, user_id: int, text: str) -> dict[str, Any]:
        message = self._message(user_id, text=text)
        message["edit_date"] = message["date"] + 5
        return {"update_id": self.next_update_id(), "edited_message": message}

    def callback_update(self, user_id: int, data: str, *, message_id: int) -> dict[str, Any]:
        message = {
            "message_id": message_id, "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"}, "text": "…",
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "SealBot", "username": self.username},
        }  # fmt: skip
        query = {
            "id": f"q{next(self._message_ids)}", "from": self.user(user_id), "chat_instance": "ci",
            "data": data, "message": message,
        }  # fmt: skip
        return {"update_id": self.next_update_id(), "callback_query": query}

    def buttons(self, chat_id: int) -> list[tuple[int, dict[str, Any]]]:
        """Every inline button sent to the chat, with the id of its message, oldest first."""
        result: list[tuple[int, dict[str, Any]]] = []
        for call in self.calls_of("sendMessage"):
            if call.params.get("chat_id") == chat_id and isinstance(call.result, dict):
                markup = call.params.get("reply_markup") or {}
                for row in markup.get("inline_keyboard", []):
                    result.extend((int(call.result["message_id"]), button) for button in row)
        return result

    def button(self, chat_id: int, label: str) -> tuple[int, str]:
        """The newest button whose label contains ``label``: (message id, callback data)."""
        for message_id, button in reversed(self.buttons(chat_id)):
            if label in button.get("text", "") and "callback_data" in button:
                return message_id, str(button["callback_data"])
        raise AssertionError(f"no button {label!r} in chat {chat_id}")

    # ---- the API --------------------------------------------------------------------------------

    def _sent_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "SealBot", "username": self.username},
            **content,
        }

    def _store_upload(self, data: bytes, name: str) -> dict[str, Any]:
        file_id = self.add_file(data, name)
        return {"file_id": file_id, "file_unique_id": file_id[:12], "file_size": len(data)}

    async def answer(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> JSONResponse:
        call = Call(method, params, files)
        self.calls.append(call)
        if self.flood.get(method):
            retry_after = self.flood[method].pop(0)
            return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result = await handler(params, files)
        if isinstance(result, JSONResponse):
            return result
        call.result = result
        return JSONResponse({"ok": True, "result": result})

    async def _api_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {
            "id": self.bot_id, "is_bot": True, "first_name": "SealBot", "username": self.username,
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
        }  # fmt: skip

    async def _api_setWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        url = str(params.get("url", ""))
        if url and not url.startswith("https://"):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = url
        self.webhook_secret = params.get("secret_token")
        if params.get("drop_pending_updates"):
            self.pending.clear()
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self.pending.clear()
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": len(self.pending),
        }  # fmt: skip
        if self.last_webhook_error:
            info["last_error_date"] = int(time.time())
            info["last_error_message"] = self.last_webhook_error
        return info

    async def _api_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        text = str(params.get("text", ""))
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return _error(400, "Bad Request: message is too long")
        extra = {"reply_markup": params["reply_markup"]} if params.get("reply_markup") else {}
        return self._sent_message(int(params["chat_id"]), text=text, **extra)

    async def _api_sendPhoto(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        data = files.get("photo", b"")
        stored = self._store_upload(data, "photo.jpg")
        photo = [{**stored, "width": 800, "height": 600}]
        return self._sent_message(int(params["chat_id"]), photo=photo, caption=params.get("caption"))

    async def _api_sendDocument(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        data = files.get("document", b"")
        stored = self._store_upload(data, "document")
        return self._sent_message(int(params["chat_id"]), document=stored, caption=params.get("caption"))

    async def _api_sendChatAction(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True

    async def _api_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.edited_markups.append((int(params["chat_id"]), int(params["message_id"])))
        return self._sent_message(int(params["chat_id"]), text="…")

    async def _api_getFile(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            return _error(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id, "file_unique_id": stored.file_id[:12],
            "file_size": len(stored.data), "file_path": stored.path,
        }  # fmt: skip

    async def _api_setMyCommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.commands[str(params.get("language_code") or "")] = list(params.get("commands", []))
        return True

    async def _api_getMyCommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return self.commands.get(str(params.get("language_code") or ""), [])

    async def _api_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if self.webhook_url:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = params.get("offset")
        if isinstance(offset, int):
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        if not self.pending and timeout > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=timeout)
        limit = int(params.get("limit") or 100)
        return self.pending[:limit]

    async def _api_createForumTopic(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {
            "message_thread_id": next(self._topic_ids),
            "name": params.get("name", ""),
            "icon_color": 7322096,
        }

    async def _api_reopenForumTopic(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True


def _error(code: int, description: str, *, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=code)


def _decode(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def _params(request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = {k: _decode(k, v) for k, v in request.query_params.items()}
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        params.update(await request.json())
    elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[name] = await value.read()
            else:
                params[name] = _decode(name, value)
    return params, files


def create_app(fake: FakeTelegram) -> Starlette:
    async def api(request: Request) -> Response:
        if request.path_params["token"] != fake.token:
            return _error(401, "Unauthorized")
        params, files = await _params(request)
        return await fake.answer(request.path_params["method"], params, files)

    async def download(request: Request) -> Response:
        if request.path_params["token"] != fake.token:
            return _error(401, "Unauthorized")
        path = request.path_params["path"]
        for stored in fake.files.values():
            if stored.path == path:
                return Response(stored.data, media_type="application/octet-stream")
        return Response(status_code=404)

    return Starlette(
        routes=[
            Route("/bot{token}/{method}", api, methods=["GET", "POST"]),
            Route("/file/bot{token}/{path:path}", download, methods=["GET"]),
        ]
    )


def main() -> None:  # pragma: no cover - a manual tool
    import uvicorn

    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server on 127.0.0.1")
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    print(f"TELEGRAM_API_BASE_URL=http://127.0.0.1:{args.port}/bot")
    print(f"TELEGRAM_FILE_BASE_URL=http://127.0.0.1:{args.port}/file/bot")
    uvicorn.run(create_app(FakeTelegram(args.token)), host="127.0.0.1", port=args.port)


if __name__ == "__main__":  # pragma: no cover
    main()
