"""The payment wait shared by every paid process: "I have paid", a new link, cancelling, the
deadline passing, and paying later from My orders."""

from __future__ import annotations

from datetime import timedelta

from bot.engine.messages import ReplyKind
from tests.conversations.conftest import Service
from tests.conversations.test_apply_enterprise import (
    apply_enterprise_until_payment,
    joined,
    last_link,
    mark,
    orders_of,
    pay_on_sandbox_page,
    replies_since,
    texts_of,
    verified_applicant,
)


async def test_i_have_paid_confirms_a_payment_before_its_notification_is_delivered(service: Service) -> None:
    await verified_applicant(service)
    await apply_enterprise_until_payment(service)
    await pay_on_sandbox_page(service)
    # the platform knows; the event has not been delivered to the chat yet
    confirmed = await service.chat.tap("我已支付")
    assert "已收到订单" in joined(confirmed)
    assert "申请法人章" in [o.label for o in service.chat.options()]
    before = mark(service)
    await service.settle()
    later = texts_of(replies_since(service, before))
    assert "已收到订单" not in later  # said once, not again by the push
    assert "已进入审核" in later


async def test_the_link_is_sent_again_for_the_same_payment(service: Service) -> None:
    await verified_applicant(service, lang="en")
    await apply_enterprise_until_payment(service, english=True)
    first = last_link(service)
    before = mark(service)
    await service.chat.tap("Send the payment link again")
    again = replies_since(service, before)
    assert [r.url for r in again if r.kind is ReplyKind.LINK] == [first]
    assert any(r.kind is ReplyKind.IMAGE for r in again)
    assert "Waiting for the payment" in texts_of(again)


async def test_cancelling_while_waiting_cancels_the_order(service: Service) -> None:
    await verified_applicant(service)
    await apply_enterprise_until_payment(service)
    answer = await service.chat.tap("取消订单")
    assert "已取消" in joined(answer)
    (order,) = await orders_of(service)
    assert order.status == "cancelled"


async def test_the_wait_ends_at_the_payment_deadline_and_offers_a_new_order(service: Service) -> None:
    await verified_applicant(service)
    await apply_enterprise_until_payment(service)
    service.clock.advance(timedelta(minutes=20))
    assert await service.container.engine.fire_due_timeouts() == 0  # the deadline is 30 minutes
    service.clock.advance(timedelta(minutes=12))
    before = mark(service)
    assert await service.container.engine.fire_due_timeouts() == 1
    await service.container.dispatcher.drain()
    timed_out = replies_since(service, before)
    assert "支付时间已到" in texts_of(timed_out)
    assert "用同样的资料重新下单" in [o.label for r in timed_out for o in r.options]


async def test_an_expiry_while_waiting_ends_the_wait_with_a_new_order_button(service: Service) -> None:
    from seal_platform.payments.reconcile import reconcile_unpaid

    await verified_applicant(service, lang="en")
    await apply_enterprise_until_payment(service, english=True)
    service.clock.advance(timedelta(minutes=30, seconds=5))
    await reconcile_unpaid(service.container.platform_services)
    before = mark(service)
    await service.settle()
    expired = replies_since(service, before)
    assert "was not paid in time" in texts_of(expired)
    assert "Place the same order again" in [o.label for r in expired for o in r.options]


async def test_an_unpaid_order_is_paid_later_from_my_orders(service: Service) -> None:
    await verified_applicant(service)
    chat = service.chat
    await apply_enterprise_until_payment(service)
    await chat.say("菜单")
    await chat.say("我的订单")
    await chat.tap("待支付")
    before = mark(service)
    await chat.tap("去支付")
    assert any(r.kind is ReplyKind.LINK for r in replies_since(service, before))
    await pay_on_sandbox_page(service)
    before = mark(service)
    await service.settle()
    assert "已收到订单" in texts_of(replies_since(service, before))
    (order,) = await orders_of(service)
    assert order.status == "under_review"
