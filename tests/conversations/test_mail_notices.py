"""订单邮件通知 in the chat: the user opts in with an address and is e-mailed (real local SMTP
server) when the order is paid and approved; opting out in the chat stops the mails; without
SMTP on the platform the chat says notices are not available."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conversations.conftest import Service
from tests.conversations.test_apply_enterprise import (
    apply_enterprise_until_payment,
    joined,
    orders_of,
    pay_on_sandbox_page,
    staff_desk,
    verified_applicant,
)
from tests.conversations.test_invoice import _service
from tests.conversations.test_invoice import mailbox as mailbox  # a fixture
from tests.fakes.smtp import Mailbox

ADDRESS = "zhang@example.com"


@pytest.fixture
async def service(mailbox: Mailbox, tmp_path: Path) -> AsyncIterator[Service]:
    built = await _service(tmp_path)
    yield built
    await built.container.stop()


@pytest.fixture
async def service_without_mail(tmp_path: Path) -> AsyncIterator[Service]:
    built = await _service(tmp_path)
    yield built
    await built.container.stop()


async def test_notices_are_turned_on_in_the_chat_mailed_on_each_status_and_turned_off(
    service: Service, mailbox: Mailbox
) -> None:
    chat = service.chat
    await verified_applicant(service)
    asked = await chat.say("邮件通知")
    assert "订单邮件通知目前未开启" in joined(asked)
    await chat.tap("开启邮件通知")
    bad = await chat.say("zhang at example")
    assert "邮箱格式不正确" in joined(bad)
    done = await chat.say(ADDRESS)
    assert f"已开启订单邮件通知：订单状态有变化时会发邮件到 {ADDRESS}" in joined(done)

    await apply_enterprise_until_payment(service)
    await pay_on_sandbox_page(service)
    await service.settle()
    (order,) = await orders_of(service)
    desk = await staff_desk(service)
    await desk.approve(order.id)
    await service.settle()
    code = order.id[:8].upper()
    assert [m["Subject"] for m in mailbox.messages] == [
        f"【电子印章服务】订单 {code}：已付款",
        f"【电子印章服务】订单 {code}：审核通过",
    ]
    assert all(m["To"] == ADDRESS for m in mailbox.messages)

    await chat.say("菜单")
    shown = await chat.say("订单邮件通知")
    assert f"已开启（发送到 {ADDRESS}）" in joined(shown)
    off = await chat.tap("关闭邮件通知")
    assert "已关闭订单邮件通知" in joined(off)
    await desk.produce(order.id)
    await service.settle()
    assert len(mailbox.messages) == 2


async def test_notices_chosen_in_english_are_mailed_in_english(service: Service, mailbox: Mailbox) -> None:
    chat = service.chat
    await verified_applicant(service, lang="en")
    await chat.say("email notices")
    await chat.tap("Turn e-mail notices on")
    done = await chat.say(ADDRESS)
    assert "Order e-mail notices are on" in joined(done)
    await apply_enterprise_until_payment(service, english=True)
    await pay_on_sandbox_page(service)
    await service.settle()
    [paid] = mailbox.messages
    assert paid["Subject"].endswith(": paid")
    assert paid["Content-Language"] == "en"


async def test_without_smtp_settings_the_chat_offers_no_notices(service_without_mail: Service) -> None:
    service = service_without_mail
    await verified_applicant(service)
    answer = await service.chat.say("邮件通知")
    assert "暂未开通邮件通知" in joined(answer)
    assert "@" not in joined(answer)
