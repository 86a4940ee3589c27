"""The support console in plain Chinese: ticket states, who owns a conversation, audit actions,
process and step names (from the flows' own catalog texts), order and seal codes, and the
buttons a user tapped shown by their labels instead of their tokens."""

from __future__ import annotations

from collections.abc import Iterable

from bot.engine.flow import Flow, FlowRegistry
from bot.engine.i18n import Catalog, Translator
from bot.engine.messages import Option
from bot.engine.state import Owner

STAFF_LOCALE = "zh-CN"

TICKET_STATES = {"waiting": "等待接入", "claimed": "处理中", "resolved": "已结束"}
RESOLUTIONS = {"resolved": "已解决", "handed_back": "交还助手", "user_left": "用户已离开"}
AUDIT_ACTIONS = {
    "assign": "指派",
    "canned_add": "添加快捷回复",
    "canned_retire": "停用快捷回复",
    "claim": "接入",
    "escalate": "超时升级",
    "handoff": "转人工",
    "leave_queue": "离开队列",
    "release": "放回队列",
    "staff_message": "客服发言",
    "take_over": "人工接管",
    "resolved": "已解决",
    "handed_back": "交还助手",
    "user_left": "用户已离开",
    "view_conversation": "查看会话",
    "read_transcript": "读取聊天记录",
    "view_media": "查看文件",
}


def owner_label(owner: str | None) -> str:
    if owner is None or owner == Owner.BOT:
        return "助手"
    if owner == Owner.WAITING:
        return "排队等待人工"
    if owner.startswith(Owner.STAFF_PREFIX):
        return f"客服 {owner.removeprefix(Owner.STAFF_PREFIX)}"
    return owner


class StaffWords:
    """Codes of the bot's catalog in the staff's language."""

    def __init__(self, catalog: Catalog, flows: FlowRegistry) -> None:
        self.t = Translator(catalog, STAFF_LOCALE)
        self.flows = flows

    def _catalog(self, key: str, fallback: str) -> str:
        return self.t(key) if self.t.catalog.has(key) else fallback

    def flow(self, name: str | None) -> str:
        found: Flow | None = self.flows.get(name) if name else None
        return self.t(found.title) if found is not None else (name or "")

    def step(self, flow_name: str | None, step_name: str | None) -> str:
        found = self.flows.get(flow_name) if flow_name else None
        if found is None or not step_name or not found.has_step(step_name):
            return step_name or ""
        step = found.step(step_name)
        key = getattr(step, "label", "") or getattr(step, "prompt", "") or getattr(step, "status", "")
        return self._catalog(key, step_name) if key else step_name

    def order_status(self, status: str) -> str:
        return self._catalog(f"orders.status.{status}", status)

    def order_type(self, order_type: str) -> str:
        return self._catalog(f"orders.type.{order_type}", order_type)

    def seal_kind(self, kind: str) -> str:
        return self._catalog(f"seals.kind_{kind}", kind)

    def seal_status(self, status: str) -> str:
        return self._catalog(f"seals.status_{status}", status)


def tapped_labels(offered: Iterable[Iterable[Option]]) -> dict[str, str]:
    """Token -> label of every button the user was offered: a tap is logged as its token."""
    labels: dict[str, str] = {}
    for options in offered:
        for option in options:
            labels[option.token] = option.label
    return labels
