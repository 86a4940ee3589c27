"""Builds callbacks exactly as WeChat's server sends them, with wechatpy's own signer and
crypto: the query signature over token/timestamp/nonce, and in safe mode the AES-encrypted
body with ``msg_signature``."""

from __future__ import annotations

import html
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import unquote

import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

OA_ID = "gh_0123456789ab"


def wechat_signature(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


@dataclass
class Callback:
    query: dict[str, str]
    body: bytes


class WeChatServer:
    def __init__(self, *, token: str, appid: str, aes_key: str | None = None) -> None:
        self.token = token
        self.appid = appid
        self.crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None
        self._create_time = int(time.time())

    def next_time(self) -> int:
        self._create_time += 1
        return self._create_time

    def text(
        self, openid: str, content: str, *, msg_id: int | None = None, create_time: int | None = None
    ) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or self.next_time()}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or secrets.randbelow(10**15)}</MsgId></xml>"
        )

    def menu_tap(self, openid: str, token: str, label: str) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{self.next_time()}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{label}]]></Content><MsgId>{secrets.randbelow(10**15)}</MsgId>"
            f"<bizmsgmenuid>{token}</bizmsgmenuid></xml>"
        )

    def media(self, openid: str, kind: str, media_id: str, *, title: str = "") -> str:
        extra = f"<Title><![CDATA[{title}]]></Title>" if title else ""
        return (
            f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{self.next_time()}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
            f"<PicUrl><![CDATA[http://mmbiz.example/x]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId>{extra}"
            f"<MsgId>{secrets.randbelow(10**15)}</MsgId></xml>"
        )

    def event(
        self, openid: str, event: str, key: str = "", *, create_time: int | None = None, inner: str = ""
    ) -> str:
        event_key = f"<EventKey><![CDATA[{key}]]></EventKey>" if key else ""
        return (
            f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or self.next_time()}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event>{event_key}{inner}</xml>"
        )

    def sign(self, xml: str | bytes, *, timestamp: int | None = None, nonce: str | None = None) -> Callback:
        """The request WeChat would send for this message (encrypted when an AES key is set)."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        query = {"signature": wechat_signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}
        if self.crypto is None:
            query["openid"] = "ignored"
            return Callback(query, xml.encode() if isinstance(xml, str) else xml)
        wrapped = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        body = (
            f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName>"
            f"<Encrypt><![CDATA[{wrapped['Encrypt']}]]></Encrypt></xml>"
        )
        query.update(encrypt_type="aes", msg_signature=wrapped["MsgSignature"])
        return Callback(query, body.encode())

    def read_reply(self, body: str) -> dict[str, str] | None:
        """The passive reply as the WeChat client would show it (None for "success")."""
        if body in ("success", ""):
            return None
        if self.crypto is not None:
            outer = xmltodict.parse(body)["xml"]
            body = self.crypto.decrypt_message(
                body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
            )
        parsed: dict[str, str] = xmltodict.parse(body)["xml"]
        return parsed


_LINK = re.compile(r'<a href="weixin://bizmsgmenu\?msgmenucontent=([^&"]*)&msgmenuid=([^"]*)">([^<]*)</a>')


def option_numbers(text: str) -> dict[str, str]:
    """Numbered option lines of a passive reply: label -> number."""
    return {
        m.group(2): m.group(1) for m in re.finditer(r"^(\d+)\. <a [^>]*>([^<]+)</a>$", text, re.MULTILINE)
    }


def option_links(text: str) -> dict[str, str]:
    """Tappable options of a reply: label -> msgmenu id (the option token)."""
    return {html.unescape(m.group(3)): unquote(m.group(2)) for m in _LINK.finditer(text)}
