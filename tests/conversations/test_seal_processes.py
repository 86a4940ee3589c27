"""Seal processes as chats against the embedded platform: my seals, renewal window, renewal up to
the UKey step, change through review, reissue, unlock, cancellation with SMS codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.bridge.hub import BridgeHub
from tests.conversations.conftest import Service
from tests.ukey_flows.world import Applicant, SealWorld, joined, pairing_code, png_bytes


@pytest.fixture
async def world(service: Service) -> AsyncIterator[SealWorld]:
    made = SealWorld(service)
    yield made
    await made.close()


async def seal_expiring_in(
    world: SealWorld, applicant: Applicant, days: int
) -> tuple[dict[str, object], Applicant]:
    """A produced seal, and the applicant (logged in again) once the clock leaves it ``days``."""
    seal = await world.active_seal(applicant)
    return seal, await world.expiring_in(applicant, seal, days)


async def test_my_seals_lists_type_status_expiry_and_offers_what_applies_now(world: SealWorld) -> None:
    applicant = await world.applicant()
    seal = await world.active_seal(applicant)
    chat = world.chat
    listed = joined(await chat.say("我的印章"))
    assert "企业印章｜北京示例科技有限公司｜正常" in listed
    detail = joined(await chat.tap("北京示例科技有限公司"))
    assert f"UKey 序列号：{seal['key_serial']}" in detail
    assert "续期：" in detail
    assert "起可以办理" in detail
    tokens = [o.token for o in chat.options()]
    assert f"@go:change:{seal['id']}" in tokens
    assert f"@go:cancel_seal:{seal['id']}" in tokens
    assert f"@go:renew:{seal['id']}" not in tokens


async def test_renewal_too_early_says_the_date_it_opens_in_chinese_and_english(world: SealWorld) -> None:
    applicant = await world.applicant()
    seal, applicant = await seal_expiring_in(world, applicant, 90)
    opens = (world.now() + timedelta(days=30)).astimezone().date()
    answer = joined(await world.chat.say("我要续期"))
    assert "暂时不能续期" in answer
    assert str(opens.year) in answer
    assert "起可以办理续期" in answer
    assert "409" not in answer
    assert "renewal_window_closed" not in answer
    await world.chat.say("english")
    english = joined(await world.chat.tap("", token=f"@go:renew:{seal['id']}"))
    assert "cannot be renewed yet" in english
    assert "Renewal opens on" in english


async def test_renewal_in_the_window_asks_years_takes_payment_and_starts_the_ukey_step(
    world: SealWorld,
) -> None:
    applicant = await world.applicant()
    seal, applicant = await seal_expiring_in(world, applicant, 30)
    chat = world.chat
    years = joined(await chat.say("renew my seal"))
    assert "现在可以续期" in years
    assert "续期年限" in years
    summary = joined(await chat.tap("1 年"))
    assert "请确认续期信息" in summary
    pay = joined(await chat.tap("确认无误"))
    assert "300.00" in pay
    # the user writes while the order waits for payment: where it stands
    waiting = joined(await chat.say("付了吗？"))
    assert "正在等待订单" in waiting
    assert "付款结果" in waiting
    order = await world.order_of_seal(applicant, str(seal["id"]), "renewal")
    await world.pay(applicant, order["id"])
    before = len(chat.transcript())
    await world.service.settle()
    after = joined(chat.transcript()[before:])
    assert "ukey-bridge pair" in after
    assert "--server" in after
    pairing_code(after)
    # until a PC is paired the step waits for it; nothing is asked in the chat meanwhile
    assert "正在等待电脑上的 UKey 助手" in after


async def test_change_goes_through_review_before_the_ukey_step(world: SealWorld) -> None:
    applicant = await world.applicant()
    seal = await world.active_seal(applicant)
    chat = world.chat
    await chat.say("印章变更")
    await chat.tap("公司名称")
    form = joined(await chat.say("北京新示例科技有限公司"))
    assert "印模采集表" in form
    await chat.upload(png_bytes(), "licence.png")
    summary = joined(await chat.upload(png_bytes(), "form.png"))
    assert "北京新示例科技有限公司" in summary
    await chat.tap("确认无误")
    order = await world.order_of_seal(applicant, str(seal["id"]), "change")
    await world.pay(applicant, order["id"])
    await world.service.settle()
    status = joined(await chat.say("审核到哪了"))
    assert "审核" in status
    await world.staff(f"/orders/{order['id']}/approve")
    before = len(chat.transcript())
    await world.service.settle()
    assert "审核已通过" in joined(chat.transcript()[before:])
    assert "ukey-bridge pair" in joined(chat.transcript()[before:])


async def test_reissue_takes_address_and_payment_then_hands_over_to_production(world: SealWorld) -> None:
    applicant = await world.applicant()
    seal = await world.active_seal(applicant)
    chat = world.chat
    await chat.say("english")
    await chat.say("lost my ukey")
    await chat.say("Wang Wu")
    await chat.say("13800138000")
    await chat.say("广东省 广州市 天河区")
    summary = joined(await chat.say("天河路 100 号 20 楼"))
    assert "Wang Wu" in summary
    await chat.tap("All correct")
    order = await world.order_of_seal(applicant, str(seal["id"]), "reissue")
    assert order["mailing_address"]["city"] == "广州市"
    await world.pay(applicant, order["id"])
    before = len(chat.transcript())
    await world.service.settle()
    assert "SF Express" in joined(chat.transcript()[before:])


async def test_unlock_is_confirmed_paid_and_goes_to_the_ukey_step(world: SealWorld) -> None:
    applicant = await world.applicant()
    seal = await world.active_seal(applicant)
    chat = world.chat
    ask = joined(await chat.say("ukey锁了"))
    assert "12345678" in ask
    assert str(seal["key_serial"]) in ask
    await chat.tap("确认办理")
    order = await world.order_of_seal(applicant, str(seal["id"]), "unlock")
    await world.pay(applicant, order["id"])
    before = len(chat.transcript())
    await world.service.settle()
    assert "ukey-bridge pair" in joined(chat.transcript()[before:])


async def test_cancellation_with_wrong_expired_then_right_sms_code(world: SealWorld) -> None:
    applicant = await world.applicant()
    seal = await world.active_seal(applicant)
    chat = world.chat
    ask = joined(await chat.say("注销印章"))
    assert "永久失效" in ask
    sent = joined(await chat.tap("确定注销"))
    assert "138****8000" in sent
    code = world.service.sms_code(applicant.phone, "cancel_seal")
    wrong = "000000" if code != "000000" else "111111"
    refused = joined(await chat.say(wrong))
    assert "验证码不正确" in refused
    assert "4 次" in refused
    world.service.clock.advance(timedelta(minutes=6))
    expired = joined(await chat.say(code))
    assert "已过期" in expired
    assert "验证码已发送" in expired
    done = joined(await chat.say(world.service.sms_code(applicant.phone, "cancel_seal")))
    assert "已注销" in done
    assert (await world.seal(applicant, str(seal["id"])))["status"] == "cancelled"


async def test_cancellation_after_too_many_wrong_codes_sends_a_new_one_in_english(world: SealWorld) -> None:
    applicant = await world.applicant(lang="en")
    seal = await world.active_seal(applicant)
    chat = world.chat
    await chat.say("cancel my seal")
    await chat.tap("Yes, cancel it")
    first = world.service.sms_code(applicant.phone, "cancel_seal")
    wrong = "000000" if first != "000000" else "111111"
    answers = [joined(await chat.say(wrong)) for _ in range(5)]
    assert "tries left" in answers[0]
    assert "void" in answers[-1]
    assert "wait" in answers[-1]
    world.service.clock.advance(timedelta(seconds=61))
    provider = world.service.container.platform_services.sms_provider
    sent_before = len(provider.latest())
    resent = joined(await chat.say(first))
    assert "A code was sent" in resent
    # a new SMS went out: the void code was not sent again as if it were still good
    assert len(provider.latest()) == sent_before + 1
    second = world.service.sms_code(applicant.phone, "cancel_seal")
    assert "Cancelled" in joined(await chat.say(second))
    assert (await world.seal(applicant, str(seal["id"])))["status"] == "cancelled"


async def test_leaving_a_payment_wait_and_coming_back_tells_where_it_stands(world: SealWorld) -> None:
    applicant = await world.applicant()
    await seal_expiring_in(world, applicant, 20)
    chat = world.chat
    await chat.say("续期")
    await chat.tap("1 年")
    await chat.tap("确认无误")
    await chat.say("菜单")
    back = joined(await chat.tap("继续上次"))
    assert "欢迎回来" in back
    assert "印章续期" in back


def test_the_service_puts_its_bridge_hub_where_the_ukey_flows_find_it(world: SealWorld) -> None:
    from handlers.ukey import HUB_KEY

    hub = world.service.container.engine.services.extra[HUB_KEY]
    assert isinstance(hub, BridgeHub)
    assert hub is world.service.container.bridge


async def test_english_my_seals_change_and_unlock(world: SealWorld) -> None:
    applicant = await world.applicant(lang="en")
    seal = await world.active_seal(applicant)
    chat = world.chat
    listed = joined(await chat.say("my seals"))
    assert "Your seals:" in listed
    assert "Company seal" in listed
    assert "active" in listed

    await chat.say("change my seal")
    await chat.tap("Company name")
    form = joined(await chat.say("北京新示例科技有限公司"))
    assert "impression collection form" in form
    await chat.upload(png_bytes(), "licence.png")
    summary = joined(await chat.upload(png_bytes(), "form.png"))
    assert "北京新示例科技有限公司" in summary
    await chat.tap("All correct")
    change = await world.order_of_seal(applicant, str(seal["id"]), "change")
    await world.pay(applicant, change["id"])
    await world.service.settle()
    await world.staff(f"/orders/{change['id']}/approve")
    before = len(chat.transcript())
    await world.service.settle()
    after = joined(chat.transcript()[before:])
    assert "The change is approved" in after
    assert "ukey-bridge pair" in after

    ask = joined(await chat.say("unlock my ukey"))
    assert "12345678" in ask
    await chat.tap("Yes, unlock")
    unlock = await world.order_of_seal(applicant, str(seal["id"]), "unlock")
    await world.pay(applicant, unlock["id"])
    before = len(chat.transcript())
    await world.service.settle()
    assert "ukey-bridge pair" in joined(chat.transcript()[before:])


async def test_english_renewal_in_the_window_reaches_the_ukey_step(world: SealWorld) -> None:
    applicant = await world.applicant(lang="en")
    seal, applicant = await seal_expiring_in(world, applicant, 30)
    chat = world.chat
    years = joined(await chat.say("renew my seal"))
    assert "For how many years" in years
    summary = joined(await chat.tap("1 year"))
    assert "Please check the renewal" in summary
    pay = joined(await chat.tap("All correct"))
    assert "300.00" in pay
    order = await world.order_of_seal(applicant, str(seal["id"]), "renewal")
    await world.pay(applicant, order["id"])
    before = len(chat.transcript())
    await world.service.settle()
    after = joined(chat.transcript()[before:])
    assert "ukey-bridge pair" in after
    assert "PC" in after


def test_every_sms_code_typed_to_confirm_a_process_is_sealed_at_rest() -> None:
    from bot.engine.flow import Field
    from handlers.cancel_seal import CANCEL
    from handlers.my_data import DELETE, EXPORT

    for flow in (CANCEL, EXPORT, DELETE):
        code = next(step for step in flow.steps if step.name == "code")
        assert isinstance(code, Field)
        assert code.sensitive, flow.name
