"""What an inbound message means before any step sees it: the command map and option tokens.

Commands (``@back``, ``@cancel``, ...) are one map: the words a user may type in either
language and the slash commands a channel sends. Every button the runtime sends with a prompt
is *bound* to that prompt: its token names the run and the step visit it was sent with
(``"<run>.<visit>.<token>"``), so a button tapped after the conversation moved on is recognised
as old and never acts on the current step. Tokens stay short: Telegram allows 64 bytes of
callback data and WeChat 64 bytes of msgmenu id.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from bot.engine.messages import Inbound, InboundKind
from bot.engine.state import ConversationState

# Control characters, zero-width space, direction marks and bidi overrides. The zero-width
# joiner and non-joiner (U+200C/D) stay: emoji sequences and some scripts are made of them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# token -> what invokes it: typed words (either language, whatever the user's locale) and
# slash commands ("/start" is what Telegram sends first; WeChat menu clicks arrive as names).
COMMANDS: dict[str, frozenset[str]] = {
    "@back": frozenset({"返回", "上一步", "back", "previous", "/back"}),
    "@cancel": frozenset({"取消", "退出", "cancel", "quit", "/cancel"}),
    "@help": frozenset({"帮助", "help", "?", "？", "/help"}),
    "@human": frozenset(
        {"人工", "转人工", "人工客服", "转人工客服", "客服", "human", "agent", "talk to a human", "/human"}
    ),
    "@resume": frozenset({"继续上次未完成的业务", "继续上次", "continue where i left off", "/resume"}),
    "@menu": frozenset({"菜单", "主菜单", "menu", "/menu", "/start"}),
    "@lang:en": frozenset({"english", "/english"}),
    "@lang:zh-CN": frozenset({"中文", "/chinese"}),
}
_BY_WORD = {word: token for token, words in COMMANDS.items() for word in words}

# Buttons that act on the step they were sent with: only ever valid bound to that prompt.
STEP_COMMANDS = frozenset({"@back", "@cancel", "@cancel!", "@stay", "@use_text", "@switch"})
NAVIGATION = frozenset({"@back", "@cancel", "@menu", "@human", "@help"})


def clean_text(text: str) -> str:
    """NFC, control and bidi characters removed, surrounding space trimmed."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


def nav_token(text: str) -> str | None:
    """The command a typed word (or slash command) invokes, if it is one."""
    return _BY_WORD.get(text.strip().lower())


def command_token(name: str, is_flow: bool) -> str:
    """A channel command (``/start``, a WeChat menu key): a command, a flow, or the menu."""
    name = name.lstrip("/").lower()
    token = _BY_WORD.get(f"/{name}")
    if token is not None:
        return token
    return f"@go:{name}" if is_flow else "@menu"


def normalise_label(text: str) -> str:
    """How a typed text is compared with a button label: width, case and spaces ignored."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def typed_digest(text: str) -> str:
    """A short digest of a label as typed or shown: the state remembers the labels of the
    buttons just shown by digest, since a label may quote what the user typed."""
    return hashlib.blake2s(normalise_label(text).encode(), digest_size=8).hexdigest()


@functools.lru_cache(maxsize=4096)  # the same labels (取消, 返回上一步, ...) come back every message
def label_digest(label: str) -> str:
    """``typed_digest`` of a label the bot shows. Only labels are cached: what a user types
    (an ID number, an address) is digested once and not kept in the process's memory."""
    return typed_digest(label)


def token_of(
    state: ConversationState,
    inbound: Inbound,
    *,
    is_flow: Callable[[str], bool],
    expects_text: Callable[[], bool],
) -> str | None:
    """The token an inbound message stands for: a tapped option's, a command's, a typed
    command word's, the option a bare number picks (not where text is expected), or the
    option whose label was typed; None for plain text, files and events."""
    if inbound.kind is InboundKind.CHOICE:
        return inbound.text
    if inbound.kind is InboundKind.COMMAND:
        return command_token(inbound.text, is_flow(inbound.text.lstrip("/").lower()))
    if inbound.kind is not InboundKind.TEXT:
        return None
    text = clean_text(inbound.text)
    nav = nav_token(text)
    if nav is not None:
        return nav
    # "2" answers the second option of the last prompt that offered options.
    if text.isdigit() and state.last_menu and not expects_text():
        index = int(text) - 1
        if 0 <= index < len(state.last_menu):
            return state.last_menu[index]
    # A label of a button the bot just showed, typed, does what tapping it does.
    if state.last_labels and text:
        return state.last_labels.get(typed_digest(text))
    return None


@dataclass(frozen=True, slots=True)
class Bound:
    """A token unwrapped: the run and step visit it was sent with, and what it means there."""

    run_id: int
    visit: int
    token: str


def bind(run_id: int, visit: int, token: str) -> str:
    return f"{run_id}.{visit}.{token}"


def unbind(token: str) -> Bound | None:
    parts = token.split(".", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return Bound(int(parts[0]), int(parts[1]), parts[2])


def meaning(token: str) -> str:
    """What a token does, bound or not (for channels that lay out navigation apart)."""
    bound = unbind(token)
    return bound.token if bound is not None else token


def is_navigation(token: str) -> bool:
    """Back, cancel, menu, human, help: channels show these apart from the answers."""
    return meaning(token) in NAVIGATION


__all__ = [
    "COMMANDS",
    "NAVIGATION",
    "STEP_COMMANDS",
    "Bound",
    "bind",
    "clean_text",
    "command_token",
    "is_navigation",
    "label_digest",
    "meaning",
    "nav_token",
    "normalise_label",
    "token_of",
    "typed_digest",
    "unbind",
]
