"""Reminders to WeChat users outside a conversation: 订阅通知 and 模板消息 built as WeChat wants.

``WeChatReach`` is the scheduler's ``ProactiveDelivery`` for WeChat (wired in ``bot.app``):

- ``reach``: inside the customer-service allowance the reminder is an ordinary chat message
  (the outbox); outside it, a 订阅通知 (``message/subscribe/bizsend``) when the user has a live
  consent for the reminder template, else the 模板消息 of a verified service account when one is
  configured, else nothing (the reminder job goes on with SMS and e-mail);
- ``send_notice``: the message is made of the template's own keyword fields, each cut to its
  type's rule (``thing`` 20 characters, ``phrase`` 5 Chinese characters, ``time``/``date`` as
  dates, ...), never chat text or markup; tapping it opens the renewal of that seal (a short
  signed link to this service, or the mini program page when configured). A one-time consent is
  spent by the send and given back if the send failed before WeChat took it.

WeChat's refusals become ``DeliveryFailed``: 43101 (no consent), 40037 (bad template), 47003
(a field broke a rule), 43004 (unfollowed) are final for this route; 45009 (daily quota) waits
until the quota renews; anything else is transient.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.channels.wechat.api import DAILY_LIMIT, WeChatApi, WeChatApiError
from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.subscriptions import ACCEPT, SubscriptionConsents
from bot.channels.wechat.token import TokenUnavailable
from bot.engine.messages import ConversationKey
from bot.errors import DeliveryFailed

log = logging.getLogger("sealbot.wechat.proactive")

NO_CONSENT = 43101
BAD_TEMPLATE = 40037
FIELD_RULE = 47003
UNFOLLOWED = 43004
FINAL = {
    NO_CONSENT: "the user has no subscription consent (43101)",
    BAD_TEMPLATE: "the template id is not valid (40037)",
    FIELD_RULE: "a field broke WeChat's rules (47003)",
    UNFOLLOWED: "the user unfollowed the account (43004)",
    40003: "invalid openid (40003)",
    48001: "the account has no permission for this API (48001)",
}
BEIJING = ZoneInfo("Asia/Shanghai")


class WeChatReminderSettings(BaseSettings):
    """Reminder templates, from the environment with the prefix ``WECHAT_REMINDER_``.

    ``*_FIELDS`` map a template's keyword (as the template shows it in the MP admin, e.g.
    ``thing1``) to what it carries: ``seal`` (the seal's name), ``kind`` (企业印章 / 法人章),
    ``expiry`` (the expiry date), ``days_left``, ``action`` (what tapping does), ``title``."""

    model_config = SettingsConfigDict(
        env_prefix="WECHAT_REMINDER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    subscribe_template_id: str = ""
    subscribe_fields: dict[str, str] = Field(
        default_factory=lambda: {"thing1": "seal", "time2": "expiry", "thing3": "action"}
    )
    template_id: str = ""
    template_fields: dict[str, str] = Field(
        default_factory=lambda: {"thing1": "seal", "time2": "expiry", "phrase3": "days_left"}
    )
    # When set, tapping opens this mini program page ({seal_id} is filled in) instead of a link.
    miniprogram_appid: str = ""
    miniprogram_page: str = "pages/renew/index?seal={seal_id}"


class Notice(Protocol):
    """What a reminder notice carries (``scheduler.proactive.ReminderNotice`` has these)."""

    @property
    def seal_id(self) -> str: ...
    @property
    def seal_name(self) -> str: ...
    @property
    def valid_to(self) -> str: ...
    @property
    def days_left(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def action_label(self) -> str: ...
    @property
    def kind_label(self) -> str: ...


# The link that opens the renewal of a seal: (seal id, now) -> a short-lived signed URL.
RenewLink = Callable[[str, datetime], str]


def _ymd(iso_date: str) -> str:
    year, month, day = (int(part) for part in iso_date.split("-"))
    return f"{year}年{month}月{day}日"


def _days_phrase(days_left: int) -> str:
    # A phrase is at most five Chinese characters: no digits allowed.
    if days_left < 0:
        return "已过期"
    if days_left == 0:
        return "今日到期"
    return "即将到期"


def field_value(keyword: str, source: str, notice: Notice) -> str:
    """The value of one keyword field, within the rule of the keyword's type."""
    kind = re.sub(r"\d+$", "", keyword)
    raw = {
        "seal": notice.seal_name,
        "kind": notice.kind_label,
        "expiry": notice.valid_to,
        "days_left": str(notice.days_left),
        "action": notice.action_label,
        "title": notice.title,
    }.get(source, "")
    if kind in ("time", "date"):
        return _ymd(notice.valid_to)
    if kind == "phrase":
        value = _days_phrase(notice.days_left) if source == "days_left" else raw
        chinese = "".join(ch for ch in value if "\u4e00" <= ch <= "\u9fff")
        return chinese[:5] or "请续期"
    if kind == "number":
        return str(max(notice.days_left, 0))
    if kind == "thing":
        if source == "days_left":
            raw = f"剩余{notice.days_left}天" if notice.days_left >= 0 else "已过期"
        return raw if len(raw) <= 20 else raw[:19] + "…"
    if kind == "name":
        return raw[:10]
    if kind == "character_string":
        return re.sub(r"[^0-9A-Za-z._-]", "", raw)[:32] or "-"
    return raw[:200]


def fields(mapping: dict[str, str], notice: Notice) -> dict[str, dict[str, str]]:
    return {keyword: {"value": field_value(keyword, source, notice)} for keyword, source in mapping.items()}


def _until_quota_renews(now: datetime) -> float:
    """WeChat's daily API quotas renew at midnight, Beijing time."""
    local = now.astimezone(BEIJING)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=BEIJING)
    return max(60.0, (midnight - local).total_seconds())


class WeChatReach:
    channel = "wechat"

    def __init__(
        self,
        *,
        api: WeChatApi,
        quota: CustomerServiceQuota,
        consents: SubscriptionConsents,
        settings: WeChatReminderSettings,
        renew_link: RenewLink,
        clock: object,
    ) -> None:
        self.api = api
        self.quota = quota
        self.consents = consents
        self.settings = settings
        self.renew_link = renew_link
        self.clock = clock

    def _now(self) -> datetime:
        now: datetime = self.clock.now()  # type: ignore[attr-defined]
        return now

    async def reach(self, key: ConversationKey, now: datetime) -> str:
        allowance = await self.quota.get(key.user_id, now)
        # Two slots: the reminder, and the one the sender keeps for "more messages wait".
        if allowance is not None and allowance.left(now) >= 2:
            return "session"
        template = self.settings.subscribe_template_id
        if template and await self.consents.may_send(key.user_id, template):
            return "notice"
        if self.settings.template_id:
            return "notice"
        return "none"

    def _miniprogram(self, seal_id: str) -> dict[str, str] | None:
        if not self.settings.miniprogram_appid:
            return None
        return {
            "appid": self.settings.miniprogram_appid,
            "pagepath": self.settings.miniprogram_page.format(seal_id=seal_id),
        }

    async def send_notice(self, key: ConversationKey, notice: Notice) -> str:
        openid, now = key.user_id, self._now()
        reasons: list[str] = []
        template = self.settings.subscribe_template_id
        if template and await self.consents.spend(openid, template, now):
            try:
                return await self.api.send_subscribe_message(
                    openid,
                    template,
                    fields(self.settings.subscribe_fields, notice),
                    page=None if self._miniprogram(notice.seal_id) else self.renew_link(notice.seal_id, now),
                    miniprogram=self._miniprogram(notice.seal_id),
                )
            except WeChatApiError as exc:
                if exc.errcode not in FINAL:
                    # WeChat did not take it: the consent is still the user's.
                    await self.consents.record(openid, template, ACCEPT, now)
                failure = _failure("订阅通知", exc, now)
                if failure.retryable or not self.settings.template_id:
                    raise failure from exc
                reasons.append(failure.reason)
            except TokenUnavailable as exc:
                await self.consents.record(openid, template, ACCEPT, now)
                raise DeliveryFailed(f"wechat token unavailable: {exc}") from exc
        if not self.settings.template_id:
            raise DeliveryFailed("wechat: no subscription consent and no template message", retryable=False)
        try:
            return await self.api.send_template_message(
                openid,
                self.settings.template_id,
                fields(self.settings.template_fields, notice),
                url=self.renew_link(notice.seal_id, now),
                miniprogram=self._miniprogram(notice.seal_id),
            )
        except WeChatApiError as exc:
            failure = _failure("模板消息", exc, now)
            if reasons:
                failure = DeliveryFailed(
                    "; ".join([*reasons, failure.reason]),
                    retryable=failure.retryable,
                    retry_after=failure.retry_after,
                )
            raise failure from exc
        except TokenUnavailable as exc:
            raise DeliveryFailed(f"wechat token unavailable: {exc}") from exc


def _failure(what: str, exc: WeChatApiError, now: datetime) -> DeliveryFailed:
    if exc.errcode in FINAL:
        return DeliveryFailed(f"wechat {what}: {FINAL[exc.errcode]}", retryable=False)
    if exc.errcode == DAILY_LIMIT:
        return DeliveryFailed(
            f"wechat {what}: daily quota reached (45009)", retry_after=_until_quota_renews(now)
        )
    return DeliveryFailed(f"wechat {what}: {exc.errmsg} ({exc.errcode})")
