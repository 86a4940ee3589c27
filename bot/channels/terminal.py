"""The terminal chat (``sealbot chat``): options by number, files by ``/file PATH``."""

from __future__ import annotations

import asyncio
import mimetypes
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from bot.channels.base import ChannelLifecycle, SimpleHealth
from bot.engine.media import sniff
from bot.engine.messages import ConversationKey, Inbound, OutboundMessage, ReplyKind

PROMPT = "> "


def render(message: OutboundMessage) -> str:
    reply = message.reply
    lines: list[str] = []
    prefix = {"staff": "[客服/staff] ", "system": "[系统/system] "}.get(message.origin.value, "")
    if reply.kind is ReplyKind.IMAGE and reply.file:
        lines.append(
            f"{prefix}[图片/image] {reply.text} ({reply.file.filename}, media {reply.file.media_id[:12]})"
        )
    elif reply.kind is ReplyKind.FILE and reply.file:
        lines.append(
            f"{prefix}[文件/file] {reply.text} ({reply.file.filename}, media {reply.file.media_id[:12]})"
        )
    elif reply.kind is ReplyKind.LINK:
        lines.append(f"{prefix}{reply.text}\n  {reply.url}")
    elif reply.text:
        lines.append(prefix + reply.text)
    for number, option in enumerate(reply.options, start=1):
        lines.append(f"  {number}. {option.label}")
    return "\n".join(lines)


class TerminalSender:
    """Prints to the terminal of ``sealbot chat``; in the service process it has no reader, so
    it only accepts (the running ``sealbot chat`` prints what it is sent)."""

    channel = "terminal"
    waits = False  # a line written to the terminal: no task of its own (``ChannelSender``)

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    async def send(self, message: OutboundMessage) -> None:
        if self.out is not None:
            self.out.write(render(message) + "\n")
            self.out.flush()


class TerminalChannel(ChannelLifecycle):
    """The terminal chat as a channel: a sender and nothing else (``sealbot chat`` reads)."""

    router = None
    passive_window = None

    def __init__(self, out: TextIO | None = None) -> None:
        self.sender = TerminalSender(out)

    async def health(self) -> SimpleHealth:
        return SimpleHealth("terminal chat")


async def terminal_loop(
    engine: object,
    dispatcher: object,
    media: object,
    user: str,
    *,
    out: TextIO = sys.stdout,
    after_replies: Callable[[list[OutboundMessage]], Awaitable[None]] | None = None,
    read_line: Callable[[TextIO], str | None] | None = None,
) -> None:
    """Read lines, hand them to the engine, print what the outbox delivers.

    ``after_replies`` sees what each message produced (the password page reads the password
    without echo there); ``read_line`` replaces standard input (tests)."""
    from bot.engine.outbox import OutboxDispatcher
    from bot.engine.ports import MediaStore
    from bot.engine.runtime import Engine

    assert isinstance(engine, Engine)
    assert isinstance(dispatcher, OutboxDispatcher)
    store: MediaStore = media  # type: ignore[assignment]
    key = ConversationKey("terminal", "local", user)
    last_options: list[str] = []
    out.write(
        "sealbot 终端聊天 / terminal chat — 输入文字对话，回复数字选择选项，/file 路径 上传文件，/quit 退出\n"
    )

    async def deliver(inbound: Inbound) -> None:
        nonlocal last_options
        sent = await engine.handle(inbound)
        await dispatcher.drain()
        if after_replies is not None:
            await after_replies(sent)
            await dispatcher.drain()
        options = [o.token for m in sent for o in m.reply.options]
        if options:
            last_options = options

    await deliver(Inbound.command(key, f"t:{uuid.uuid4()}", "start"))
    while True:
        line = await asyncio.to_thread(read_line or _read, out)
        if line is None or line.strip() in {"/quit", "/exit"}:
            return
        text = line.strip()
        if not text:
            continue
        message_id = f"t:{uuid.uuid4()}"
        if text.startswith("/file "):
            path = Path(text[6:].strip())
            try:
                data = await asyncio.to_thread(_read_file, path)
            except OSError as exc:
                out.write(f"无法读取文件 / cannot read file: {exc}\n")
                continue
            kind = sniff(data)
            if kind == "application/octet-stream":
                kind = mimetypes.guess_type(path.name)[0] or kind
            file = await store.put(data, filename=path.name, content_type=kind)
            await deliver(Inbound.upload(key, message_id, file))
        elif text.isdigit() and 0 < int(text) <= len(last_options):
            await deliver(Inbound.choice(key, message_id, last_options[int(text) - 1]))
        else:
            await deliver(Inbound.text_message(key, message_id, text))


def _read_file(path: Path) -> bytes:
    return path.expanduser().read_bytes()


def _read(out: TextIO) -> str | None:
    out.write(PROMPT)
    out.flush()
    line = sys.stdin.readline()
    return line if line else None
