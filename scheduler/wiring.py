"""How the composition root builds the reminder job's ways to reach people (kept here so
``bot.app`` wires it in a few lines): WeChat notices when WeChat is on, SMS through the
platform, e-mail through the platform's SMTP server, the signed renewal links, and on WeChat the
订阅通知 consent page the chat offers (``offer_consent``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from bot.channels.wechat.proactive import WeChatReach, WeChatReminderSettings
from bot.engine.ports import Clock
from bot.engine.runtime import Engine
from handlers.reminders import CONSENT_PAGE
from platform_client.reminders import RemindersAPI
from scheduler.consent_page import ConsentLinks, ConsentPage, JsapiTickets
from scheduler.proactive import ProactiveDelivery
from scheduler.renew_links import RenewLinks, renew_link_router
from scheduler.sms import PlatformReminderMail, PlatformReminderSms


class ReminderReach:
    def __init__(
        self, *, platform: RemindersAPI, secret: str, public_url: str, clock: Clock, wechat: Any | None = None
    ) -> None:
        self.links = RenewLinks(secret, public_url, ttl=timedelta(hours=72))
        self.secret, self.public_url = secret, public_url
        self.wechat = wechat
        self.consent: ConsentPage | None = None
        self.clock = clock
        self.sms = PlatformReminderSms(platform)
        self.mail = PlatformReminderMail(platform)
        self.proactive: dict[str, ProactiveDelivery] = {}
        self.wechat_reminders = WeChatReminderSettings()
        if wechat is not None:
            self.proactive["wechat"] = WeChatReach(
                api=wechat.api,
                quota=wechat.quota,
                consents=wechat.consents,
                settings=self.wechat_reminders,
                renew_link=self.links.url,
                clock=clock,
            )

    def offer_consent(self, engine: Engine) -> None:
        """Give the chat the consent page to offer, when WeChat is on with a reminder
        subscription template (``WECHAT_REMINDER_SUBSCRIBE_TEMPLATE_ID``)."""
        template_id = self.wechat_reminders.subscribe_template_id
        if self.wechat is None or not template_id:
            return
        self.consent = ConsentPage(
            appid=self.wechat.settings.appid,
            links=ConsentLinks(self.secret, self.public_url),
            tickets=JsapiTickets(self.wechat.api, self.clock),
            consents=self.wechat.consents,
            template_ids=[template_id],
            catalog=engine.catalog,
            clock=self.clock,
        )
        engine.services.extra[CONSENT_PAGE] = self.consent

    def router(self) -> APIRouter:
        router = renew_link_router(self.links, self.clock.now)
        if self.consent is not None:
            router.include_router(self.consent.router())
        return router
