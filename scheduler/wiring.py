"""How the composition root builds the reminder job's ways to reach people (kept here so
``bot.app`` wires it in a few lines): WeChat notices when WeChat is on, SMS through the
platform, e-mail when an SMTP host is configured, and the signed renewal links."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from bot.channels.wechat.proactive import WeChatReach, WeChatReminderSettings
from bot.engine.ports import Clock
from platform_client.reminders import RemindersAPI
from scheduler.mail import SmtpMailer, SmtpSettings
from scheduler.proactive import ProactiveDelivery
from scheduler.renew_links import RenewLinks, renew_link_router
from scheduler.sms import PlatformContacts, PlatformReminderSms


class ReminderReach:
    def __init__(
        self, *, platform: RemindersAPI, secret: str, public_url: str, clock: Clock, wechat: Any | None = None
    ) -> None:
        self.links = RenewLinks(secret, public_url, ttl=timedelta(hours=72))
        self.clock = clock
        self.sms = PlatformReminderSms(platform)
        smtp = SmtpSettings()
        self.mail = SmtpMailer(smtp, PlatformContacts(platform)) if smtp.configured else None
        self.proactive: dict[str, ProactiveDelivery] = {}
        if wechat is not None:
            self.proactive["wechat"] = WeChatReach(
                api=wechat.api,
                quota=wechat.quota,
                consents=wechat.consents,
                settings=WeChatReminderSettings(),
                renew_link=self.links.url,
                clock=clock,
            )

    def router(self) -> APIRouter:
        return renew_link_router(self.links, self.clock.now)
