"""Account news reaches every chat where the account is logged in, or only the latest one
when the user chose so."""

from __future__ import annotations

from datetime import timedelta

from bot.engine.messages import ExternalEvent
from bot.engine.secrets_box import mask
from tests.conversations.conftest import Service

PHONE = "13800138701"


async def log_in_by_sms(service: Service, user: str) -> None:
    chat = service.chat
    await chat.say("登录", user=user)
    await chat.say(PHONE, user=user)
    await chat.tap("手机号 + 短信验证码", user=user)
    assert "登录成功" in "\n".join(await chat.say(service.sms_code(PHONE, "login"), user=user))


async def test_news_goes_to_every_logged_in_chat_or_the_latest_only(service: Service) -> None:
    platform = service.container.platform
    await platform.accounts.send_sms_code(PHONE, "register")
    registration = await platform.accounts.register(PHONE, service.sms_code(PHONE, "register"), "seal2024ok")
    await log_in_by_sms(service, "phone")
    service.clock.advance(timedelta(minutes=2))  # past the SMS resend cooldown
    await log_in_by_sms(service, "office-pc")
    engine, account = service.container.engine, registration.account.id
    news = ExternalEvent("test:1", "order.shipped", {"order_id": "o-1", "waybill": "SF1234567890123"})
    delivered = await engine.deliver_account_event(account, news)
    assert {m.key.user_id for m in delivered} == {"phone", "office-pc"}

    chat = service.chat
    await chat.say("推送设置", user="office-pc")
    done = await chat.tap("只推送到最近使用的聊天窗口", user="office-pc")
    assert "只推送到最近使用的聊天窗口" in "\n".join(done)
    later = ExternalEvent("test:2", "order.shipped", {"order_id": "o-1", "waybill": "SF1234567890123"})
    delivered = await engine.deliver_account_event(account, later)
    assert {m.key.user_id for m in delivered} == {"office-pc"}


async def test_my_information_lists_what_is_held_masked(service: Service) -> None:
    platform = service.container.platform
    await platform.accounts.send_sms_code(PHONE, "register")
    await platform.accounts.register(PHONE, service.sms_code(PHONE, "register"), "seal2024ok")
    await log_in_by_sms(service, "u1")
    shown = "\n".join(await service.chat.say("我的信息"))
    assert "我们保存的您的信息" in shown
    assert mask(PHONE) in shown
    assert PHONE not in shown
    assert "订单：0 个" in shown
