"""A fake WeChat API server (``/cgi-bin/...``) for tests and for trying the bot out.

wechatpy and the stable-token client talk to it through ``WECHAT_API_BASE_URL``. It issues
access tokens, checks them on every call (40001 for a stale one), records customer-service,
template and subscription messages, stores uploaded media and serves media for download,
keeps the menu, issues the JS-SDK ticket, and can be told to answer the next calls of a path with an errcode
(45015 outside the window, 45047 over the count, 40001, ...).

Run it by hand with ``python -m bot.channels.wechat.fake_server --port 8082``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class WeChatCall:
    path: str
    query: dict[str, str]
    body: Any
    msgid: int | None = None  # what a template / subscription send answered


@dataclass
class FakeMedia:
    data: bytes
    content_type: str
    filename: str


@dataclass
class FakeWeChat:
    appid: str
    secret: str
    calls: list[WeChatCall] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    media: dict[str, FakeMedia] = field(default_factory=dict)
    menu: dict[str, Any] | None = None
    jsapi_tickets: list[str] = field(default_factory=list)
    # path -> errcodes for the next calls of that path, consumed in order
    failures: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)

    # ---- what tests and demos use ---------------------------------------------------------------

    @property
    def current_token(self) -> str | None:
        return self.tokens_issued[-1] if self.tokens_issued else None

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        self.failures[path].extend([errcode] * times)

    def revoke_token(self) -> None:
        """As if another system forced a refresh: the current token stops working."""
        self.tokens_issued.append(f"T{secrets.token_hex(8)}")

    def add_media(self, data: bytes, content_type: str, filename: str) -> str:
        media_id = f"M{next(self._ids)}_{secrets.token_hex(6)}"
        self.media[media_id] = FakeMedia(data, content_type, filename)
        return media_id

    def calls_to(self, path: str) -> list[WeChatCall]:
        return [c for c in self.calls if c.path == path]

    def customer_messages(self, openid: str | None = None) -> list[dict[str, Any]]:
        """Customer-service messages WeChat accepted (refused ones are not counted)."""
        return [
            c.body
            for c in self.calls_to("message/custom/send")
            if isinstance(c.body, dict)
            and c.body.get("_accepted")
            and (openid is None or c.body.get("touser") == openid)
        ]

    # ---- the API --------------------------------------------------------------------------------

    def _token_ok(self, query: dict[str, str]) -> bool:
        return self.current_token is not None and query.get("access_token") == self.current_token

    async def answer(
        self, path: str, query: dict[str, str], body: Any, files: dict[str, UploadFile]
    ) -> Response:
        call = WeChatCall(path, query, body)
        self.calls.append(call)
        if path == "stable_token":
            return self._stable_token(body)
        if not self._token_ok(query):
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if self.failures.get(path):
            return _err(self.failures[path].pop(0), "injected failure")
        if path == "message/custom/send":
            if isinstance(body, dict):
                body["_accepted"] = True
            return _ok()
        if path in ("message/template/send", "message/template/subscribe"):
            call.msgid = next(self._ids)
            return _ok(msgid=call.msgid)
        if path == "message/subscribe/bizsend":
            broken = _subscribe_rule_broken(body)
            if broken is not None:
                return _err(47003, f"argument invalid! data.{broken}.value invalid")
            call.msgid = next(self._ids)
            return _ok(msgid=call.msgid)
        if path == "media/upload":
            upload = files.get("media")
            if upload is None:
                return _err(41005, "media data missing")
            data = await upload.read()
            media_id = self.add_media(data, upload.content_type or "image/jpeg", upload.filename or "upload")
            return _ok(type=query.get("type", "image"), media_id=media_id, created_at=1)
        if path == "media/get":
            stored = self.media.get(query.get("media_id", ""))
            if stored is None:
                return _err(40007, "invalid media_id")
            return Response(
                stored.data,
                media_type=stored.content_type,
                headers={"Content-Disposition": f'attachment; filename="{stored.filename}"'},
            )
        if path == "ticket/getticket":
            if query.get("type") != "jsapi":
                return _err(40097, "invalid args")
            if not self.jsapi_tickets:
                self.jsapi_tickets.append(secrets.token_urlsafe(32))
            return _ok(ticket=self.jsapi_tickets[-1], expires_in=7200)
        if path == "menu/create":
            if not isinstance(body, dict) or not body.get("button"):
                return _err(40016, "invalid button size")
            self.menu = body
            return _ok()
        if path == "menu/get":
            if self.menu is None:
                return _err(46003, "menu no exist")
            return JSONResponse({"menu": self.menu})
        return _err(40066, "invalid url")

    def _stable_token(self, body: Any) -> Response:
        if not isinstance(body, dict) or body.get("appid") != self.appid:
            return _err(40013, "invalid appid")
        if body.get("secret") != self.secret:
            return _err(40125, "invalid appsecret")
        if self.failures.get("stable_token"):
            return _err(self.failures["stable_token"].pop(0), "injected failure")
        if body.get("force_refresh") or self.current_token is None:
            self.tokens_issued.append(f"T{secrets.token_hex(8)}")
        return JSONResponse({"access_token": self.current_token, "expires_in": 7200})


_LIMITS = {"thing": 20, "character_string": 32, "number": 32, "letter": 32, "name": 10, "phrase": 5}


def _subscribe_rule_broken(body: Any) -> str | None:
    """The first keyword of a 订阅通知 that breaks WeChat's rule for its type (its length, and
    Chinese only for ``phrase``), as WeChat answers 47003 for it; None when all are fine."""
    if not isinstance(body, dict) or not body.get("touser") or not body.get("template_id"):
        return "touser"
    data = body.get("data")
    if not isinstance(data, dict) or not data:
        return "data"
    for key, item in data.items():
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value:
            return str(key)
        kind = str(key).rstrip("0123456789")
        if len(value) > _LIMITS.get(kind, 200):
            return str(key)
        if kind == "phrase" and not all("\u4e00" <= ch <= "\u9fff" for ch in value):
            return str(key)
    return None


def _ok(**extra: Any) -> JSONResponse:
    return JSONResponse({"errcode": 0, "errmsg": "ok", **extra})


def _err(errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg})


def create_app(fake: FakeWeChat) -> Starlette:
    async def api(request: Request) -> Response:
        path = request.path_params["path"]
        query = dict(request.query_params)
        files: dict[str, UploadFile] = {}
        body: Any = None
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form()
            files = {k: v for k, v in form.multi_items() if isinstance(v, UploadFile)}
        else:
            raw = await request.body()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return _err(47001, "data format error")
        return await fake.answer(path, query, body, files)

    return Starlette(routes=[Route("/cgi-bin/{path:path}", api, methods=["GET", "POST"])])


def main() -> None:  # pragma: no cover - a manual tool
    import uvicorn

    parser = argparse.ArgumentParser(description="Fake WeChat API server on 127.0.0.1")
    parser.add_argument("--appid", default="wx_fake_appid")
    parser.add_argument("--secret", default="fake-secret")
    parser.add_argument("--port", type=int, default=8082)
    args = parser.parse_args()
    print(f"WECHAT_API_BASE_URL=http://127.0.0.1:{args.port}/cgi-bin/")
    uvicorn.run(create_app(FakeWeChat(args.appid, args.secret)), host="127.0.0.1", port=args.port)


if __name__ == "__main__":  # pragma: no cover
    main()
