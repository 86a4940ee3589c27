"""Turns engine replies into what WeChat can show.

Passive replies (the webhook's answer) are one text message: the leading text replies of a
turn are merged, options as numbered lines (the engine takes a number for any option of the
last prompt). Customer-service messages render options as msgmenu (tappable lines that come
back as a text with ``bizmsgmenuid``), images as uploaded media, files as expiring links (an
official account cannot send a file), long text split under WeChat's 2048-byte limit.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from bot.engine.messages import FileRef, Option, Reply, ReplyKind
from bot.engine.tokens import is_navigation

TEXT_LIMIT_BYTES = 2000  # WeChat allows 2048 bytes of text; keep a margin
MSGMENU_MAX_ITEMS = 10
MSGMENU_ID_LIMIT = 64


@dataclass(frozen=True)
class CsText:
    text: str


@dataclass(frozen=True)
class CsMenu:
    head: str
    items: tuple[tuple[str, str], ...]  # (option token as the item id, label)
    tail: str


@dataclass(frozen=True)
class CsImage:
    file: FileRef


CsOp = CsText | CsMenu | CsImage


def option_link(option: Option) -> str:
    """A tappable line in a text message: tapping sends the label back with ``bizmsgmenuid``
    set to the token, which comes back to the engine as the choice itself."""
    href = f"weixin://bizmsgmenu?msgmenucontent={quote(option.label)}&msgmenuid={quote(option.token)}"
    return f'<a href="{href}">{html.escape(option.label, quote=False)}</a>'


def numbered(text: str, options: tuple[Option, ...]) -> str:
    """Options as tappable lines; answers also get their number (the engine takes a number
    for an option of the last prompt, except where it expects typed text), navigation only
    the link, since typing its number would be an answer at a text step."""
    if not options:
        return text
    lines = [
        option_link(option) if is_navigation(option.token) else f"{index}. {option_link(option)}"
        for index, option in enumerate(options, start=1)
    ]
    return "\n".join([text, *lines]) if text else "\n".join(lines)


def split_bytes(text: str, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """Split at line breaks where possible, each part within ``limit`` UTF-8 bytes."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        while len(line.encode()) > limit:
            cut = limit
            while len(line[:cut].encode()) > limit:
                cut -= 1
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current or not parts:
        parts.append(current)
    return parts


def passive_text(replies: list[Reply], link_for: FileLinker | None = None) -> tuple[int, str]:
    """How many leading replies fit in one passive text reply, and that text."""
    texts: list[str] = []
    taken = 0
    for reply in replies:
        if reply.kind is ReplyKind.TEXT:
            piece = numbered(reply.text, reply.options)
        elif reply.kind is ReplyKind.LINK and reply.url:
            piece = f"{reply.text}\n{reply.url}" if reply.text else reply.url
        elif reply.kind is ReplyKind.FILE and reply.file is not None and link_for is not None:
            piece = link_for(reply)
        else:
            break
        merged = "\n\n".join([*texts, piece])
        if len(merged.encode()) > TEXT_LIMIT_BYTES:
            break
        texts.append(piece)
        taken += 1
    return taken, "\n\n".join(texts)


class FileLinker:
    """Produces the text of a FILE reply: its caption and a download link."""

    def __init__(self, make_url: Callable[[FileRef], str], label: str = "{name}") -> None:
        self._make_url = make_url
        self._label = label

    def __call__(self, reply: Reply) -> str:
        assert reply.file is not None
        url = self._make_url(reply.file)
        line = self._label.format(name=reply.file.filename)
        return "\n".join(p for p in (reply.text, f"{line}\n{url}") if p)


def customer_service_ops(reply: Reply, link_for: FileLinker | None = None) -> list[CsOp]:
    if reply.kind is ReplyKind.TYPING:
        return []
    if reply.kind is ReplyKind.IMAGE and reply.file is not None:
        ops: list[CsOp] = [CsImage(reply.file)]
        return [*(CsText(p) for p in split_bytes(reply.text)), *ops] if reply.text else ops
    if reply.kind is ReplyKind.FILE and reply.file is not None and link_for is not None:
        return [CsText(p) for p in split_bytes(link_for(reply))]
    if reply.kind is ReplyKind.LINK and reply.url:
        text = f"{reply.text}\n{reply.url}" if reply.text else reply.url
        return [CsText(p) for p in split_bytes(text)]
    options = reply.options
    fits_menu = 0 < len(options) <= MSGMENU_MAX_ITEMS and all(
        len(o.token.encode()) <= MSGMENU_ID_LIMIT for o in options
    )
    if not fits_menu:
        return [CsText(p) for p in split_bytes(numbered(reply.text, options))]
    parts = split_bytes(reply.text)
    head = parts[-1]
    return [
        *(CsText(p) for p in parts[:-1]),
        CsMenu(head, tuple((o.token, o.label[:60]) for o in options), ""),
    ]


def _cdata(text: str) -> str:
    # "]]>" inside the text would close the section early: split it across two sections
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def transfer_xml(*, to_user: str, from_user: str, create_time: int) -> str:
    """Hands the session to WeChat's customer-service system (消息转发到客服)."""
    return (
        "<xml>"
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime>"
        "<MsgType><![CDATA[transfer_customer_service]]></MsgType>"
        "</xml>"
    )


def passive_xml(*, to_user: str, from_user: str, text: str, create_time: int) -> str:
    return (
        "<xml>"
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(text)}</Content>"
        "</xml>"
    )
