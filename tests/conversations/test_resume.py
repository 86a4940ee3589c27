"""继续上次未完成的业务 always works: after logging out, under another account, after the order of
the run put aside was cancelled elsewhere. Never an internal error, always one line of why and
the next sensible step."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conversations.conftest import Service
from tests.password_page import use_page
from tests.ukey_flows.world import PASSWORD, Applicant, SealWorld, joined

INTERNAL_ERROR_ZH = "系统处理时出了点问题"
INTERNAL_ERROR_EN = "something went wrong on our side"


@pytest.fixture
async def world(service: Service) -> AsyncIterator[SealWorld]:
    made = SealWorld(service)
    yield made
    await made.close()


async def log_in(world: SealWorld, phone: str, *, english: bool = False) -> list[str]:
    chat = world.chat
    await chat.say(phone)
    await chat.tap("password" if english else "密码")
    # The password is typed on the secure page, never in the chat (privacy).
    pages = world.service.container.password_pages
    assert pages is not None
    view, answer = await use_page(pages, chat, PASSWORD)
    assert view.status == "done", view
    return answer


async def invoice_then_log_out(world: SealWorld, applicant: Applicant, *, english: bool = False) -> None:
    """我的印章 -> 我要开发票 (my seals is put aside) -> finish the invoice -> 退出登录."""
    chat = world.chat
    await chat.say("my seals" if english else "我的印章")
    await chat.say("invoice" if english else "我要开发票")
    await chat.tap("company seal" if english else "企业公章")
    await chat.say("北京示例科技有限公司")
    await chat.say("91110000600037341L")
    await chat.say("finance@example.com")
    done = joined(await chat.tap("All correct" if english else "确认无误"))
    assert ("Invoice requested" if english else "已提交") in done
    bye = joined(await chat.say("log out" if english else "退出登录"))
    assert ("Logged out" if english else "已退出登录") in bye


async def test_resume_after_logout_asks_to_log_in_and_then_continues_where_it_was(world: SealWorld) -> None:
    applicant = await world.applicant()
    await world.active_seal(applicant)
    await invoice_then_log_out(world, applicant)
    chat = world.chat
    asked = joined(await chat.tap("继续上次未完成的业务"))
    assert INTERNAL_ERROR_ZH not in asked
    assert "请先登录，登录后继续办理「我的印章」" in asked
    back = joined(await log_in(world, applicant.phone))
    assert "登录成功" in back
    # the seal list is asked again, and the resume option is gone from the menu
    assert "北京示例科技有限公司" in chat.options()[0].label
    await chat.tap("北京示例科技有限公司")
    await chat.say("菜单")
    assert "继续上次未完成的业务" not in [o.label for o in chat.options()]


async def test_resume_after_logout_in_english(world: SealWorld) -> None:
    applicant = await world.applicant(lang="en")
    await world.active_seal(applicant)
    await invoice_then_log_out(world, applicant, english=True)
    chat = world.chat
    asked = joined(await chat.tap("Continue"))
    assert INTERNAL_ERROR_EN not in asked
    assert 'Please log in first; then "My seals" continues where you left it.' in asked
    back = joined(await log_in(world, applicant.phone, english=True))
    assert "Logged in" in back
    assert "北京示例科技有限公司" in chat.options()[0].label


async def test_another_account_on_the_same_chat_never_takes_up_the_first_ones_process(
    world: SealWorld,
) -> None:
    first = await world.applicant()
    await world.active_seal(first)
    chat = world.chat
    await chat.say("补办")
    await chat.say("王五")  # the recipient: the reissue now holds the first account's answers
    await chat.say("菜单")
    await chat.say("退出登录")
    platform = world.service.container.platform
    other_phone = "13900139000"
    await platform.accounts.send_sms_code(other_phone, "register")
    await platform.accounts.register(other_phone, world.service.sms_code(other_phone, "register"), PASSWORD)
    await chat.say("登录")
    await log_in(world, other_phone)
    await chat.say("菜单")
    answer = joined(await chat.tap("继续上次未完成的业务"))
    assert INTERNAL_ERROR_ZH not in answer
    assert "「印章补办」是另一个账号未完成的业务" in answer
    assert "王五" not in answer
    assert "继续上次未完成的业务" not in [o.label for o in chat.options()]


async def test_a_reissue_whose_order_was_cancelled_elsewhere_starts_anew_when_asked_again(
    world: SealWorld,
) -> None:
    applicant = await world.applicant()
    seal = await world.active_seal(applicant)
    chat = world.chat
    await chat.say("补办")
    await chat.say("王五")
    await chat.say("13800138000")
    await chat.say("广东省 广州市 天河区")
    await chat.say("天河路 100 号 20 楼")
    await chat.tap("确认无误")
    order = await world.order_of_seal(applicant, str(seal["id"]), "reissue")
    await chat.say("菜单")  # the payment wait is put aside
    # the user cancels that order from another device (the platform API the web uses)
    await world.service.container.platform.orders.cancel(applicant.token, order["id"])
    again = joined(await chat.say("补办"))
    assert INTERNAL_ERROR_ZH not in again
    code = order["code"]  # the order number the platform gives
    assert f"上次未完成的「印章补办」订单 {code} 已取消，不能再继续，现在为您重新办理。" in again
    assert "收件人" in again  # asked from the start, for the same seal
    assert "我已支付" not in [o.label for o in chat.options()]


async def test_a_cancelled_renewal_put_aside_starts_anew_in_english(world: SealWorld) -> None:
    applicant = await world.applicant(lang="en")
    seal = await world.active_seal(applicant)
    applicant = await world.expiring_in(applicant, seal, 20)
    chat = world.chat
    await chat.say("renew")
    await chat.tap("1 year")
    await chat.tap("All correct")
    order = await world.order_of_seal(applicant, str(seal["id"]), "renewal")
    await chat.say("menu")
    await world.service.container.platform.orders.cancel(applicant.token, order["id"])
    again = joined(await chat.tap("Continue"))
    assert INTERNAL_ERROR_EN not in again
    code = order["code"]  # the order number the platform gives
    assert f'The unfinished "Renew a seal" order {code} is cancelled and cannot go on' in again
