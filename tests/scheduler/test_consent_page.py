"""Asking a WeChat user for 订阅通知 consent in the chat: the link offered when reminders are
turned on and after an order completes, the page with its JS-SDK signature over the
``jsapi_ticket`` (checked here with hashlib, independently of the product's function), the
result posted back and recorded as the popup event would record it, and the next reminder going
out as a subscription message at the WeChat recorder. Forged and expired links are refused."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from bot.channels.wechat.api import WeChatApi
from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.settings import WeChatSettings
from bot.channels.wechat.subscriptions import SubscriptionConsents
from bot.channels.wechat.token import StableTokenProvider
from bot.engine.messages import ReplyKind
from bot.platform_events import PlatformEventConsumer
from bot.testing import ManualClock
from handlers import orders as order_handlers
from scheduler.deliveries import Status
from scheduler.wiring import ReminderReach
from tests.scheduler.conftest import APPID, SECRET, Bot, Platform, make_bot

DAY = timedelta(days=1)
TPL = "TPL_CONSENT_EXPIRY"
PUBLIC = "https://bot.example.com"
NAME = "同意测试有限公司"


@dataclass
class WeChatParts:
    """What the reminder wiring takes from the WeChat channel (the channel itself needs a
    webhook and a media store this test has no use for)."""

    settings: WeChatSettings
    api: WeChatApi
    quota: CustomerServiceQuota
    consents: SubscriptionConsents


@dataclass
class World:
    bot: Bot
    reach: ReminderReach
    consents: SubscriptionConsents
    web: httpx.AsyncClient
    fake: FakeWeChat


@pytest.fixture
async def world(
    platform: Platform,
    clock: ManualClock,
    tmp_path: Path,
    recorder: tuple[FakeWeChat, str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    monkeypatch.setenv("WECHAT_REMINDER_SUBSCRIBE_TEMPLATE_ID", TPL)
    fake, base = recorder
    bot = await make_bot(
        platform, clock, db_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", channel="wechat"
    )
    db = bot.deliveries.engine
    http = httpx.AsyncClient()
    tokens = StableTokenProvider(
        db=db, appid=APPID, secret=SECRET, api_base_url=f"{base}/cgi-bin/", http=http, clock=clock.now
    )
    consents = SubscriptionConsents(db, APPID)
    parts = WeChatParts(
        settings=WeChatSettings(_env_file=None, appid=APPID),  # type: ignore[call-arg]
        api=WeChatApi(appid=APPID, api_base_url=f"{base}/cgi-bin/", tokens=tokens),
        quota=CustomerServiceQuota(db, APPID),
        consents=consents,
    )
    # The composition root's own wiring (bot/app.py does these two calls and the router).
    reach = ReminderReach(
        platform=platform.reminders, secret="consent-secret-key", public_url=PUBLIC, clock=clock, wechat=parts
    )
    reach.offer_consent(bot.chat.engine)
    bot.job.proactive["wechat"] = reach.proactive["wechat"]
    app = FastAPI()
    app.include_router(reach.router())
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)
    yield World(bot, reach, consents, web, fake)
    await web.aclose()
    await http.aclose()
    await bot.chat.close()


def offered_link(bot: Bot, user: str = "u1") -> str:
    [link] = [m.reply for m in bot.sent if m.key.user_id == user and m.reply.kind == ReplyKind.LINK]
    assert link.url is not None
    return link.url


def page_data(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="consent-data">(.*?)</script>', html, re.S)
    assert found, html
    data: dict[str, object] = json.loads(found.group(1))
    return data


async def open_page(world: World, url: str) -> httpx.Response:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC
    return await world.web.get(f"{parts.path}?{parts.query}")


async def test_turning_reminders_on_offers_the_page_whose_signature_and_consent_lead_to_a_subscription_message(
    platform: Platform, world: World, clock: ManualClock
) -> None:
    bot = world.bot
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=61 * DAY, name=NAME)
    await bot.bind("u1", account)
    answer = await bot.chat.say("开启提醒")
    assert answer[0].startswith("已开启印章到期提醒")
    assert answer[1].startswith("超过 48 小时没有聊天时，微信只能用「订阅通知」给您发到期提醒。")
    assert answer[2] == "允许接收印章到期提醒"
    url = offered_link(bot)

    page = await open_page(world, url)
    assert page.status_code == 200
    assert "https://res.wx.qq.com" in page.headers["content-security-policy"]
    assert f'<wx-open-subscribe template="{TPL}" id="subscribe">' in page.text
    assert "请点击下方按钮，在弹窗中选择「允许」" in page.text
    data = page_data(page.text)
    config = data["config"]
    assert isinstance(config, dict)
    [ticket_call] = world.fake.calls_to("ticket/getticket")
    assert ticket_call.query["type"] == "jsapi"
    assert ticket_call.query["access_token"] == world.fake.current_token
    [ticket] = world.fake.jsapi_tickets
    # JS-SDK 附录1: sha1 over the four fields, keys sorted, the page address without '#'.
    plain = f"jsapi_ticket={ticket}&noncestr={config['nonceStr']}&timestamp={config['timestamp']}&url={url}"
    assert config["signature"] == hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324 - WeChat's rule
    assert config["appId"] == APPID
    assert config["timestamp"] == int(clock.now().timestamp())
    assert config["openTagList"] == ["wx-open-subscribe"]

    # The open tag reported "accept"; the page posts it back.
    assert await world.consents.get("u1", TPL) is None
    posted = await world.web.post("/r/consent/result", json={"t": data["token"], "results": {TPL: "accept"}})
    assert posted.status_code == 200
    assert posted.json() == {"recorded": {TPL: "accept"}}
    assert await world.consents.may_send("u1", TPL) is True

    # A day later (the chat's 48 hours long gone by the time WeChat counts it), the 60-day
    # reminder is the subscription message the user allowed, and it spends that consent.
    clock.advance(DAY)
    await bot.run()
    [sent] = world.fake.calls_to("message/subscribe/bizsend")
    assert sent.body["touser"] == "u1"
    assert sent.body["template_id"] == TPL
    assert sent.body["page"].startswith(f"{PUBLIC}/r/renew/{seal}.")
    [delivery] = await bot.deliveries.recent()
    assert (delivery.threshold, delivery.status, delivery.route) == (60, Status.SENT, "notice")
    assert delivery.provider_message_id == str(sent.msgid)
    assert await world.consents.may_send("u1", TPL) is False


async def test_a_forged_or_expired_link_is_refused_and_records_nothing(
    platform: Platform, world: World, clock: ManualClock
) -> None:
    account = await platform.add_account()
    await world.bot.bind("u1", account)
    await world.bot.chat.say("提醒方式")
    await world.bot.chat.say("聊天和短信")
    url = offered_link(world.bot)
    token = url.split("?t=", 1)[1]
    payload, _, signature = token.partition(".")
    # the link's own signature on a payload naming another user
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert body["k"] == "wechat:main:u1"
    body["k"] = "wechat:main:someone-else"
    other = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=") + "." + signature
    forged = await world.web.get(f"/r/consent?t={other}")
    assert forged.status_code == 410
    assert "链接无效" in forged.text
    refused = await world.web.post("/r/consent/result", json={"t": other, "results": {TPL: "accept"}})
    assert (refused.status_code, refused.json()) == (410, {"error": "invalid"})

    clock.advance(timedelta(minutes=31))
    expired = await open_page(world, url)
    assert expired.status_code == 410
    assert "链接已过期" in expired.text
    late = await world.web.post("/r/consent/result", json={"t": token, "results": {TPL: "accept"}})
    assert (late.status_code, late.json()) == (410, {"error": "expired"})
    assert await world.consents.get("u1", TPL) is None
    assert world.fake.calls_to("ticket/getticket") == []


async def test_english_speakers_get_the_offer_and_the_page_in_english(
    platform: Platform, world: World
) -> None:
    account = await platform.add_account()
    await world.bot.bind("u1", account, lang="en")
    answer = await world.bot.chat.say("reminder channels")
    assert answer[0] == "Reminders now reach you by: chat, SMS, e-mail. How would you like to receive them?"
    saved = await world.bot.chat.say("Chat only")
    assert saved[0] == "Saved. Expiry reminders will reach you by: chat."
    assert saved[1].startswith("When we have not chatted for 48 hours, WeChat lets us send")
    assert saved[2] == "Allow seal expiry reminders"
    page = await open_page(world, offered_link(world.bot))
    assert page.status_code == 200
    assert "<html lang=en>" in page.text
    assert "tap the button below and choose &quot;Allow&quot; in the pop-up" in page.text
    assert "Allow expiry reminders" in page.text
    texts = page_data(page.text)["texts"]
    assert isinstance(texts, dict)
    assert texts["done_accept"].startswith(
        "Saved: your next expiry reminder will come as a subscription notice"
    )


async def test_a_completed_order_is_followed_by_the_offer_and_an_opted_out_user_is_not_asked(
    platform: Platform, world: World, clock: ManualClock
) -> None:
    bot = world.bot
    bot.chat.engine.hooks.event_handlers["order.completed"] = order_handlers.on_completed
    events = PlatformEventConsumer(platform.client, bot.chat.engine, bot.chat.store, clock, poll_seconds=60)
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=30 * DAY, name=NAME)
    await bot.bind("u1", account)
    await events.drain()
    before = len(bot.sent)
    await platform.renew(seal)  # a real renewal order, completed by the UKey step
    await events.drain()
    await bot.chat.dispatcher.drain()
    pushed = [m.reply for m in bot.sent[before:] if m.key.user_id == "u1"]
    assert pushed[0].text.endswith("（印章续期）已办理完成，感谢使用！")
    assert pushed[1].text.startswith("超过 48 小时没有聊天时")
    assert pushed[2].kind == ReplyKind.LINK
    assert (pushed[2].url or "").startswith(f"{PUBLIC}/r/consent?t=")

    # Someone who turned reminders off is not asked, even when choosing the chat.
    await bot.chat.say("关闭提醒")
    await bot.chat.say("提醒方式")
    before = len(bot.sent)
    saved = await bot.chat.say("仅聊天")
    assert saved[0] == "已保存。到期提醒将通过：聊天。"
    assert [m for m in bot.sent[before:] if m.reply.kind == ReplyKind.LINK] == []
    assert not any("订阅通知" in text for text in saved)


async def test_when_wechat_gives_no_ticket_the_page_says_to_try_later(
    platform: Platform, world: World
) -> None:
    account = await platform.add_account()
    await world.bot.bind("u1", account)
    await world.bot.chat.say("开启提醒")
    world.fake.fail_next("ticket/getticket", 45009)
    page = await open_page(world, offered_link(world.bot))
    assert page.status_code == 503
    assert "暂时无法完成设置" in page.text
    assert "wx-open-subscribe" not in page.text
