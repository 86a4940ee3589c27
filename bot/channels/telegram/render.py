"""Turns an engine ``Reply`` into Bot API calls: inline keyboards for options, photos and
documents uploaded from the media store, long text split at Telegram's limit."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.engine.messages import FileRef, Option, Reply, ReplyKind
from bot.engine.tokens import meaning

TEXT_LIMIT = 4096  # UTF-16 code units per message
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes


@dataclass(frozen=True)
class SendText:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True)
class SendPhoto:
    file: FileRef
    caption: str


@dataclass(frozen=True)
class SendDocument:
    file: FileRef
    caption: str


@dataclass(frozen=True)
class SendTyping:
    pass


TelegramOp = SendText | SendPhoto | SendDocument | SendTyping


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split at paragraph, then line, then any boundary, keeping each part within ``limit``."""
    parts: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = _cut_point(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest or not parts:
        parts.append(rest)
    return parts


def _cut_point(text: str, limit: int) -> int:
    # the longest prefix within the limit, measured in UTF-16 units
    end = 0
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            break
        end = index + 1
    for separator in ("\n\n", "\n", "。", ". ", " "):
        at = text.rfind(separator, 0, end)
        if at > end // 2:
            return at + len(separator)
    return end


def keyboard(options: tuple[Option, ...]) -> tuple[InlineKeyboardMarkup | None, list[Option]]:
    """Buttons for the options that fit in callback data; the rest are returned to be shown as
    numbered lines (the engine accepts a number for any option of the last prompt)."""
    answers: list[list[InlineKeyboardButton]] = []
    navigation: list[InlineKeyboardButton] = []
    unfit: list[Option] = []
    for option in options:
        if len(option.token.encode()) > CALLBACK_DATA_LIMIT:
            unfit.append(option)
            continue
        button = InlineKeyboardButton(option.label[:64], callback_data=option.token)
        if meaning(option.token).startswith("@"):  # commands (bound to their prompt or not)
            navigation.append(button)
        else:
            answers.append([button])
    rows = answers + ([navigation] if navigation else [])
    return (InlineKeyboardMarkup(rows) if rows else None), unfit


def render(reply: Reply) -> list[TelegramOp]:
    if reply.kind is ReplyKind.TYPING:
        return [SendTyping()]
    if reply.kind in (ReplyKind.IMAGE, ReplyKind.FILE) and reply.file is not None:
        caption = reply.text[:CAPTION_LIMIT]
        op: TelegramOp = (
            SendPhoto(reply.file, caption)
            if reply.kind is ReplyKind.IMAGE
            else SendDocument(reply.file, caption)
        )
        ops: list[TelegramOp] = [op]
        if utf16_len(reply.text) > CAPTION_LIMIT:
            ops.extend(SendText(part) for part in split_text(reply.text))
        return ops
    markup, unfit = keyboard(reply.options)
    text = reply.text
    if unfit:
        lines = [f"{reply.options.index(o) + 1}. {o.label}" for o in unfit]
        text = "\n".join([text, *lines]) if text else "\n".join(lines)
    if reply.kind is ReplyKind.LINK and reply.url:
        text = f"{text}\n{reply.url}" if text else reply.url
        if reply.url.startswith(("https://", "http://")):
            link = [InlineKeyboardButton((reply.text or reply.url)[:64], url=reply.url)]
            rows = [link, *(markup.inline_keyboard if markup else ())]
            markup = InlineKeyboardMarkup(rows)
    parts = split_text(text or "…")
    # the keyboard goes with the last part, where the user's eyes are
    return [SendText(part, markup if index == len(parts) - 1 else None) for index, part in enumerate(parts)]
