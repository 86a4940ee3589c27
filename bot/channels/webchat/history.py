"""The web chat's history after a (re)load: the bot's messages and the user's own, in order.

The outbox holds what the bot said; the inbound receipts hold what the user sent, as
``bot.redaction`` let it be stored (codes, PINs and passwords replaced by a marker, ID and phone
numbers masked). Nothing here un-masks: the history shows exactly what is stored.

Both are read in commit order, and a receipt is placed before the first reply the engine
committed for it (``in_reply_to``). A message that got no reply of its own (an upload while
staff own the chat, for instance) is placed by time, but never out of the receipts' order.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from bot.engine.messages import FileRef, InboundKind, OutboundMessage

# What the user sent themselves; events, pushes and commands are not theirs to see again.
TOKEN = re.compile(r"^[\w@:.!-]+$")  # an option token, as opposed to a redaction marker
SHOWN = frozenset({InboundKind.TEXT.value, InboundKind.CHOICE.value, InboundKind.FILE.value})


def media_url(file: FileRef) -> str:
    return f"/chat/api/media/{file.media_id}?name={quote(file.filename)}"


def own_message_json(entry: dict[str, Any], labels: dict[str, str]) -> dict[str, Any] | None:
    """One of the user's messages as the page draws it; None for what it does not show."""
    body = entry["body"]
    kind = entry["kind"]
    base: dict[str, Any] = {"id": None, "origin": "user", "options": [], "url": None, "file": None}
    if kind == InboundKind.FILE.value and body.get("file"):
        file = FileRef.from_dict(body["file"])
        shown = "image" if file.content_type.startswith("image/") else "file"
        return base | {
            "kind": shown,
            "text": "",
            "file": {"url": media_url(file), "name": file.filename, "type": file.content_type},
        }
    text = body.get("text")
    if not text:
        return None
    if kind == InboundKind.CHOICE.value:
        # A tap is shown as the label the user tapped (stored labels are masked where needed);
        # a tap at a sensitive step was stored as a marker, shown as such; a token with no label
        # on record (a deep link) was never something the user saw.
        label = labels.get(text)
        if label is None and TOKEN.fullmatch(text):
            return None
        return base | {"kind": "text", "text": label or text}
    return base | {"kind": "text", "text": text}


def merged_history(
    messages: Sequence[OutboundMessage],
    entries: Sequence[dict[str, Any]],
    render: Callable[[OutboundMessage], dict[str, Any]],
    *,
    complete: bool,
) -> list[dict[str, Any]]:
    """``messages`` (delivered, by id) and the user's ``entries`` (receipts, by id) as one list.
    ``complete``: ``messages`` runs to the latest one, so messages sent after it belong here too;
    otherwise they wait for a later read."""
    labels = {o.token: o.label for m in messages for o in m.reply.options}
    first_reply: dict[str, int] = {}
    for index, message in enumerate(messages):
        if message.in_reply_to is not None:
            first_reply.setdefault(message.in_reply_to, index)
    times = [m.created_at for m in messages]
    shown = [e for e in entries if e["kind"] in SHOWN]
    anchors = [first_reply.get(e["message_id"]) for e in shown]
    # the anchor of the next receipt that has one (the end if none), for each receipt
    upper_bounds = [len(messages)] * len(shown)
    for index in range(len(shown) - 2, -1, -1):
        following = anchors[index + 1]
        upper_bounds[index] = following if following is not None else upper_bounds[index + 1]
    positions: list[int] = []
    for index, entry in enumerate(shown):
        anchor = anchors[index]
        if anchor is None:
            lower = positions[-1] if positions else 0
            anchor = min(max(bisect_right(times, entry["at"]), lower), upper_bounds[index])
        positions.append(anchor)
    out: list[dict[str, Any]] = []
    placed = 0
    for index, message in enumerate(messages):
        while placed < len(shown) and positions[placed] <= index:
            own = own_message_json(shown[placed], labels)
            if own is not None:
                out.append(own)
            placed += 1
        out.append(render(message))
    if complete:
        for entry in shown[placed:]:
            own = own_message_json(entry, labels)
            if own is not None:
                out.append(own)
    return out
