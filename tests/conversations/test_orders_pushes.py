"""Status pushes and My orders: every change of an order reaches the chat without being asked,
and a rejected order is fixed and resubmitted from the push."""

from __future__ import annotations

from bot.engine.messages import ReplyKind
from tests.conversations.conftest import Service
from tests.conversations.test_apply_enterprise import (
    WAYBILL,
    apply_enterprise_until_payment,
    joined,
    mark,
    orders_of,
    pay_on_sandbox_page,
    pdf_scan,
    pushed_labels,
    pushed_option,
    replies_since,
    staff_desk,
    texts_of,
    verified_applicant,
)

REASON = "营业执照扫描件不清晰，请重新扫描后上传"


async def paid_order(service: Service, *, english: bool = False) -> str:
    await verified_applicant(service, lang="en" if english else "zh")
    await apply_enterprise_until_payment(service, english=english)
    await pay_on_sandbox_page(service)
    await service.settle()
    (order,) = await orders_of(service)
    return order.id


async def test_rejection_reason_resubmission_approval_production_and_shipping_reach_the_chat(
    service: Service,
) -> None:
    order_id = await paid_order(service)
    desk = await staff_desk(service)
    chat = service.chat

    await desk.reject(order_id, REASON)
    before = mark(service)
    await service.settle()
    rejected = texts_of(replies_since(service, before))
    assert "未通过审核" in rejected
    assert REASON in rejected
    assert "修改资料并重新提交" in pushed_labels(service, before)

    intro = await chat.tap("修改资料", token=pushed_option(service, before, "修改资料并重新提交"))
    assert REASON in joined(intro)
    await chat.tap("更换营业执照扫描件")
    more = await chat.upload(pdf_scan("a clearer licence"), "licence.pdf")
    assert "还要更换其他材料吗" in joined(more)
    done = await chat.tap("现在重新提交")
    assert "已重新提交" in joined(done)
    (order,) = await orders_of(service)
    assert order.status == "under_review"
    before = mark(service)
    await service.settle()
    assert "重新进入审核" in texts_of(replies_since(service, before))

    await desk.approve(order_id)
    before = mark(service)
    await service.settle()
    assert "已审核通过" in texts_of(replies_since(service, before))

    await desk.produce(order_id)
    before = mark(service)
    await service.settle()
    produced = replies_since(service, before)
    assert "印章已制作完成" in texts_of(produced)  # produced, not "being made"
    assert "正在制作" not in texts_of(produced)
    impressions = [r for r in produced if r.kind is ReplyKind.IMAGE]
    assert len(impressions) == 1
    assert impressions[0].text == "企业印章印模：北京示例科技有限公司"
    assert impressions[0].file is not None
    assert (await service.container.engine.media.get(impressions[0].file.media_id)).startswith(b"\x89PNG")

    await desk.ship(order_id)
    before = mark(service)
    await service.settle()
    shipped = replies_since(service, before)
    assert WAYBILL in texts_of(shipped)
    links = [r for r in shipped if r.kind is ReplyKind.LINK]
    assert len(links) == 1
    assert links[0].url is not None
    assert WAYBILL in links[0].url


async def test_pushes_speak_english_to_an_english_chat(service: Service) -> None:
    order_id = await paid_order(service, english=True)
    desk = await staff_desk(service)
    await desk.reject(order_id, "The licence scan is blurred, please scan it again")
    before = mark(service)
    await service.settle()
    pushed = texts_of(replies_since(service, before))
    assert "did not pass the review" in pushed
    assert "blurred" in pushed
    assert "Fix and resubmit" in pushed_labels(service, before)


async def test_my_orders_lists_status_in_words_and_offers_what_can_be_done(service: Service) -> None:
    await verified_applicant(service)
    chat = service.chat
    await apply_enterprise_until_payment(service)
    await chat.say("菜单")
    listed = await chat.say("我的订单")
    (order,) = await orders_of(service)
    labels = [o.label for o in chat.options()]
    assert any("待支付" in label and "¥300.00" in label and "企业公章" in label for label in labels), labels
    assert "请选择要查看的订单" in joined(listed)
    detail = await chat.tap("待支付")
    assert "状态：待支付" in joined(detail)
    assert order.code in joined(detail)
    assert {"去支付", "取消订单"} <= {o.label for o in chat.options()}
    confirm = await chat.tap("取消订单")
    assert "确定要取消订单" in joined(confirm)
    cancelled = await chat.tap("确定取消")
    assert "已取消" in joined(cancelled)
    (order,) = await orders_of(service)
    assert order.status == "cancelled"


async def test_my_orders_without_orders_offers_to_apply(service: Service) -> None:
    await verified_applicant(service, lang="en")
    answer = await service.chat.say("my orders")
    assert "no orders yet" in joined(answer)
    assert "Apply for a company seal" in [o.label for o in service.chat.options()]


async def test_an_expired_order_is_pushed_with_a_button_that_orders_again(service: Service) -> None:
    from datetime import timedelta

    from seal_platform.payments.reconcile import reconcile_unpaid

    await verified_applicant(service)
    chat = service.chat
    await chat.say("申请法人章")  # the personal seal, to show the push names the process
    await chat.say("示例科技（上海）有限公司")
    for answer in ("91110000600037341L", "李四", "360426199101010071", "13800138000"):
        await chat.say(answer)
    from tests.conversations.test_apply_enterprise import png_scan

    await chat.upload(png_scan(), "front.png")
    await chat.upload(png_scan(colour=(9, 9, 9)), "back.png")
    await chat.tap("1 年")
    await chat.upload(pdf_scan(), "form.pdf")
    for answer in ("王五", "13800138000", "上海市 浦东新区", "世纪大道 100 号"):
        await chat.say(answer)
    await chat.tap("确认无误")
    await chat.say("菜单")  # the user leaves the payment wait: the push must still reach them
    service.clock.advance(timedelta(minutes=31))
    await reconcile_unpaid(service.container.platform_services)
    before = mark(service)
    await service.settle()
    pushed = texts_of(replies_since(service, before))
    assert "超过支付期限" in pushed
    assert "法人章" in pushed
    again = await chat.tap("重新下单", token=pushed_option(service, before, "用同样的资料重新下单"))
    assert "重新下单，新订单号" in joined(again)
    orders = await orders_of(service)
    assert sorted(o.status for o in orders) == ["awaiting_payment", "expired"]
    fresh = next(o for o in orders if o.status == "awaiting_payment")
    old = next(o for o in orders if o.status == "expired")
    assert fresh.documents == old.documents
    assert fresh.mailing_address == old.mailing_address
    assert any(r.kind is ReplyKind.LINK for r in replies_since(service, before))
