"""Start parameters that open a process directly: Telegram ``/start PAYLOAD`` deep links,
WeChat QR-code scene strings and custom-menu keys share one grammar.

``<flow>`` opens a flow (or the menu when there is no such flow, the engine's rule for
commands); ``<flow>-<argument>`` opens it with ``_arg`` prefilled, e.g. ``renew-S2024001`` for
a reminder's "renew this seal" link. Telegram allows ``A-Za-z0-9_-`` and 64 characters, so the
grammar stays inside that alphabet and works unchanged in a WeChat scene string (64 chars too).
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.engine.messages import ConversationKey, Inbound

_PAYLOAD = re.compile(r"(?P<flow>[a-z][a-z0-9_]{0,31})(?:-(?P<arg>[A-Za-z0-9_-]{1,40}))?")


def start_inbound(
    key: ConversationKey,
    message_id: str,
    payload: str,
    *,
    at: datetime,
    language_hint: str | None = None,
) -> Inbound:
    """The inbound a start parameter stands for; anything outside the grammar opens the menu
    (a mistyped or forged link must never be an error)."""
    match = _PAYLOAD.fullmatch(payload.strip())
    if match is None:
        return Inbound.command(key, message_id, "start", at=at, language_hint=language_hint)
    flow, arg = match.group("flow"), match.group("arg")
    if arg is None:
        return Inbound.command(key, message_id, flow, at=at, language_hint=language_hint)
    # A global choice token is the engine's way to open a flow with a prefilled argument.
    return Inbound.choice(key, message_id, f"@go:{flow}:{arg}", at=at, language_hint=language_hint)
