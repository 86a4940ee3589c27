"""The legal representative's seal (法人章) as a chat: ID card front and back, years, the
impression form, address, confirm, pay; and the company seal offered afterwards."""

from __future__ import annotations

from bot.engine.messages import ReplyKind
from tests.conversations.conftest import Service
from tests.conversations.test_apply_enterprise import (
    COMPANY,
    LEGAL_REP_ID,
    PHONE,
    USCC,
    gif_image,
    joined,
    mark,
    orders_of,
    pay_on_sandbox_page,
    pdf_scan,
    png_scan,
    pushed_option,
    replies_since,
    texts_of,
    verified_applicant,
)


async def answer_company(service: Service) -> None:
    for answer in (COMPANY, USCC, "李四", LEGAL_REP_ID, PHONE):
        await service.chat.say(answer)


async def test_personal_seal_in_chinese_with_both_sides_of_the_id_card(service: Service) -> None:
    await verified_applicant(service)
    chat = service.chat
    first = await chat.say("我要申请法人章")
    assert "企业名称" in joined(first)  # no bundle question: this is the personal seal
    await answer_company(service)
    front = joined(chat.transcript()[-1:])
    assert "身份证人像面" in front
    wrong = await chat.upload(gif_image(), "front.jpg", content_type="image/jpeg")
    assert "文件格式不支持" in joined(wrong)
    back_step = await chat.upload(png_scan(), "front.png")
    assert "国徽面" in joined(back_step)
    years = await chat.upload(png_scan(colour=(0, 90, 0)), "back.png")
    assert "1 年 ¥200.00" in [o.label for o in chat.options()]
    assert "证书有效期" in joined(years)
    before = mark(service)
    await chat.tap("3 年 ¥600.00")
    forms = [r for r in replies_since(service, before) if r.kind is ReplyKind.FILE]
    assert len(forms) == 1
    assert "法人章印模采集表" in forms[0].text
    await chat.upload(pdf_scan("signed"), "form.pdf")
    for answer in ("王五", PHONE, "广东省 深圳市 南山区", "科技园 1 号"):
        await chat.say(answer)
    submitted = await chat.tap("确认无误")
    assert "¥600.00" in joined(submitted)
    (order,) = await orders_of(service)
    assert order.type == "personal_seal"
    assert set(order.documents) == {"id_card_front", "id_card_back", "impression_form_personal"}
    await pay_on_sandbox_page(service)
    before = mark(service)
    await service.settle()
    assert "已收到订单" in texts_of(replies_since(service, before))
    # and the company seal is offered, with the company filled in
    offered = await chat.tap("申请企业公章", token=pushed_option(service, before, "申请企业公章"))
    assert "营业执照" in joined(offered)


async def test_personal_seal_in_english(service: Service) -> None:
    await verified_applicant(service, lang="en")
    chat = service.chat
    first = await chat.say("apply for a legal representative seal")
    assert "company name" in joined(first)
    await answer_company(service)
    await chat.upload(png_scan(), "front.png")
    await chat.upload(png_scan(colour=(1, 1, 1)), "back.png")
    await chat.tap("1 yr ¥200.00")
    await chat.upload(pdf_scan(), "form.pdf")
    for answer in ("王五", PHONE, "上海市 浦东新区"):
        await chat.say(answer)
    summary = await chat.say("世纪大道 100 号")
    assert "Please check the application" in joined(summary)
    submitted = await chat.tap("All correct")
    assert "legal representative seal" in joined(submitted)
    assert "¥200.00" in joined(submitted)
