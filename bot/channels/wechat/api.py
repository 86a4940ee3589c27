"""The WeChat APIs we call, through wechatpy's ``WeChatClient`` run in worker threads.

wechatpy is synchronous (requests) and, with ``auto_retry``, recurses on a permanently bad
token; here it never fetches tokens itself: each call gets the shared stable token, and an
invalid-token answer invalidates it and is retried once with a fresh one.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.channels.wechat.errors import WeChatError
from bot.channels.wechat.token import StableTokenProvider, TokenUnavailable

T = TypeVar("T")

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
QUOTA_COUNT_EXCEEDED = 45047
OUTSIDE_WINDOW = 45015
DAILY_LIMIT = 45009


class WeChatApiError(WeChatError):
    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"wechat api error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class _SharedTokenClient(WeChatClient):  # type: ignore[misc]
    """A wechatpy client that only ever uses the token it is given."""

    def fetch_access_token(self) -> Any:
        raise TokenUnavailable("wechatpy must not fetch tokens; the stable token provider does")


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str
    filename: str


class WeChatApi:
    def __init__(
        self, *, appid: str, api_base_url: str, tokens: StableTokenProvider, timeout: float = 10.0
    ) -> None:
        client = _SharedTokenClient(appid, "", timeout=timeout, auto_retry=False)
        client.API_BASE_URL = api_base_url
        self._client = client
        self.tokens = tokens

    async def _call(self, call: Callable[[WeChatClient], T]) -> T:
        for attempt in (1, 2):
            token = await self.tokens.get()

            def run(token: str = token) -> T:
                # the token is set right before the call: all threads use the current one
                self._client.session.set(self._client.access_token_key, token)
                return call(self._client)

            try:
                return await asyncio.to_thread(run)
            except WeChatClientException as exc:
                errcode = int(exc.errcode) if exc.errcode is not None else None
                if errcode in TOKEN_ERRORS and attempt == 1:
                    await self.tokens.invalidate(token)
                    continue
                raise WeChatApiError(errcode, str(exc.errmsg)) from exc
            except requests.RequestException as exc:
                raise WeChatApiError(None, f"network: {exc!r}") from exc
        raise WeChatApiError(40001, "access token rejected twice")  # pragma: no cover - loop exits above

    # ---- customer-service messages ---------------------------------------------------------

    async def send_text(self, openid: str, content: str) -> None:
        await self._call(lambda c: c.message.send_text(openid, content))

    async def send_msg_menu(self, openid: str, head: str, items: list[tuple[str, str]], tail: str) -> None:
        msgmenu = {
            "head_content": head,
            "list": [{"id": item_id, "content": content} for item_id, content in items],
            "tail_content": tail,
        }
        await self._call(lambda c: c.message.send_msg_menu(openid, msgmenu))

    async def send_image(self, openid: str, media_id: str) -> None:
        await self._call(lambda c: c.message.send_image(openid, media_id))

    async def upload_image(self, data: bytes, filename: str) -> str:
        def upload(c: WeChatClient) -> Any:
            handle = io.BytesIO(data)
            handle.name = filename
            return c.media.upload("image", handle)

        result = await self._call(upload)
        return str(result["media_id"])

    async def download_media(self, media_id: str, limit: int) -> Media:
        def download(c: WeChatClient) -> Any:
            return c.media.download(media_id)

        response = await self._call(download)
        if not isinstance(response, requests.Response):
            raise WeChatApiError(None, "media download returned no file")
        data = response.content
        if len(data) > limit:
            raise MediaTooLarge(len(data))
        disposition = response.headers.get("Content-Disposition", "")
        filename = (
            disposition.split("filename=", 1)[-1].strip('"; ') if "filename=" in disposition else media_id
        )
        return Media(data, response.headers.get("Content-Type", "application/octet-stream"), filename)

    # ---- proactive messages ----------------------------------------------------------------

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, Any], url: str | None
    ) -> None:
        await self._call(lambda c: c.message.send_template(openid, template_id, data, url=url))

    async def send_subscribe_template(
        self, openid: str, template_id: str, scene: int, title: str, content: str, url: str | None
    ) -> None:
        data = {"content": {"value": content}}
        await self._call(
            lambda c: c.message.send_subscribe_template(openid, template_id, scene, title, data, url=url)
        )

    async def send_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: dict[str, dict[str, str]],
        *,
        page: str | None = None,
        miniprogram: dict[str, str] | None = None,
    ) -> str:
        """A 订阅通知 (``message/subscribe/bizsend``; ``page`` is the web link); returns the msgid."""
        return await self._notice(
            "message/subscribe/bizsend", openid, template_id, data, ("page", page), miniprogram
        )

    async def send_template_message(
        self,
        openid: str,
        template_id: str,
        data: dict[str, dict[str, str]],
        *,
        url: str | None = None,
        miniprogram: dict[str, str] | None = None,
    ) -> str:
        """A 模板消息 (``message/template/send``, verified service accounts); returns the msgid."""
        return await self._notice(
            "message/template/send", openid, template_id, data, ("url", url), miniprogram
        )

    async def _notice(
        self,
        path: str,
        openid: str,
        template_id: str,
        data: dict[str, dict[str, str]],
        link: tuple[str, str | None],
        miniprogram: dict[str, str] | None,
    ) -> str:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if link[1]:
            body[link[0]] = link[1]
        if miniprogram:
            body["miniprogram"] = miniprogram
        result: dict[str, Any] = await self._call(lambda c: c.post(path, data=body))
        return str(result.get("msgid", ""))

    # ---- JS-SDK ----------------------------------------------------------------------------

    async def jsapi_ticket(self) -> tuple[str, int]:
        """The JS-SDK ticket (``ticket/getticket?type=jsapi``) and its lifetime in seconds."""
        result: dict[str, Any] = await self._call(
            lambda c: c.get("ticket/getticket", params={"type": "jsapi"})
        )
        ticket = str(result.get("ticket") or "")
        if not ticket:
            raise WeChatApiError(None, "ticket/getticket answered without a ticket")
        return ticket, int(result.get("expires_in", 7200))

    # ---- menu ------------------------------------------------------------------------------

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self._call(lambda c: c.menu.create(menu))

    async def get_menu(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(lambda c: c.menu.get())
        return result


class MediaTooLarge(WeChatError):
    def __init__(self, size: int) -> None:
        super().__init__(f"media of {size} bytes")
        self.size = size
