"""The WeChat channel end to end: callbacks signed (and in safe mode encrypted) with
wechatpy exactly as WeChat's server sends them, replies passive or through the fake
customer-service API."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from bot.channels.wechat.tables import wechat_deliveries, wechat_subscriptions
from bot.engine.messages import ConversationKey
from bot.engine.store import OutboxStatus
from bot.engine.tables import outbox
from tests.channels.conftest import WX_APPID, WX_TOKEN, WeChatRig
from tests.channels.wechat_server import option_links, option_numbers, wechat_signature

OPENID = "oUser_0000000000000000000001"
PDF = b"%PDF-1.4\n" + b"1" * 500 + b"\n%%EOF"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x03" * 300


def key() -> ConversationKey:
    return ConversationKey("wechat", WX_APPID, OPENID)


async def passive(rig: WeChatRig, xml: str) -> str:
    """Deliver and return the passive reply's text ('' for "success")."""
    response = await rig.deliver(xml)
    assert response.status_code == 200, response.text
    reply = rig.server.read_reply(response.text)
    return reply["Content"] if reply else ""


async def outbox_statuses(rig: WeChatRig) -> list[str]:
    async with rig.stack.store.engine.connect() as conn:
        return [
            r.status for r in (await conn.execute(sa.select(outbox.c.status).order_by(outbox.c.id))).all()
        ]


async def test_url_verification_echoes_echostr_when_signed(wechat: WeChatRig) -> None:
    ts = str(int(wechat.channel.clock.now().timestamp()))
    query = {
        "signature": wechat_signature(WX_TOKEN, ts, "n1"),
        "timestamp": ts,
        "nonce": "n1",
        "echostr": "e123",
    }
    response = await wechat.client.get("/wechat", params=query)
    assert response.status_code == 200
    assert response.text == "e123"
    query["signature"] = "0" * 40
    assert (await wechat.client.get("/wechat", params=query)).status_code == 403


async def test_whole_form_runs_through_plain_mode_with_passive_replies(wechat: WeChatRig) -> None:
    server = wechat.server
    menu = await passive(wechat, server.event(OPENID, "subscribe"))
    assert menu.startswith("欢迎关注")  # the welcome, then the menu
    numbers = option_numbers(menu)
    ask_name = await passive(wechat, server.text(OPENID, numbers["测试表单"]))
    assert "请输入姓名：" in ask_name
    # the cancel link is bound to this prompt (run 1, visit 1): an old one cannot cancel later
    assert option_links(ask_name) == {"取消": "1.1.@cancel"}
    kinds = await passive(wechat, server.text(OPENID, "王芳"))
    # tapping the msgmenu link sends the label with the option token as bizmsgmenuid
    ask_company = await passive(wechat, server.menu_tap(OPENID, option_links(kinds)["单位"], "单位"))
    assert "请输入单位名称：" in ask_company
    await passive(wechat, server.text(OPENID, "某某科技有限公司"))
    await passive(wechat, server.text(OPENID, "30"))
    ask_scan = await passive(wechat, server.text(OPENID, "11010519491231002X"))
    assert "请上传扫描件" in ask_scan
    media_id = wechat.fake.add_media(PDF, "application/pdf", "licence.pdf")
    summary = await passive(wechat, server.media(OPENID, "file", media_id))
    assert "王芳" in summary
    assert "某某科技有限公司" in summary
    await passive(wechat, server.text(OPENID, option_numbers(summary)["确认无误，提交"]))
    row = await wechat.stack.store.get(key())
    assert row is not None
    assert row.state["run"]["step"] == "payment"
    await wechat.settle()
    # every answer was passive: nothing went through the customer-service API
    assert wechat.fake.customer_messages() == []
    assert set(await outbox_statuses(wechat)) == {OutboxStatus.PASSIVE}


async def test_safe_mode_message_is_decrypted_and_answered_encrypted(wechat_safe: WeChatRig) -> None:
    response = await wechat_safe.deliver(wechat_safe.server.text(OPENID, "菜单"))
    assert response.status_code == 200
    assert "<Encrypt>" in response.text
    reply = wechat_safe.server.read_reply(response.text)
    assert reply is not None
    assert reply["ToUserName"] == OPENID
    assert "测试表单" in reply["Content"]


async def test_safe_mode_refuses_a_bad_msg_signature_before_decrypting(wechat_safe: WeChatRig) -> None:
    callback = wechat_safe.server.sign(wechat_safe.server.text(OPENID, "菜单"))
    callback.query["msg_signature"] = "f" * 40
    response = await wechat_safe.client.post("/wechat", params=callback.query, content=callback.body)
    assert response.status_code == 403
    assert await wechat_safe.stack.store.get(key()) is None


async def test_slow_engine_answers_success_and_delivers_once_by_customer_service(wechat: WeChatRig) -> None:
    response = await wechat.deliver(wechat.server.event(OPENID, "CLICK", "slow"))
    assert response.text == "success"
    await wechat.settle()
    messages = wechat.fake.customer_messages(OPENID)
    assert len(messages) == 1
    assert "请输入姓名" in str(messages[0])  # the slow flow's first question, in Chinese
    assert await outbox_statuses(wechat) == [OutboxStatus.SENT]


async def test_retry_during_slow_handling_delivers_the_reply_exactly_once(wechat: WeChatRig) -> None:
    xml = wechat.server.event(OPENID, "CLICK", "slow")
    first = await wechat.deliver(xml)
    assert first.text == "success"  # the budget ran out while the flow was still busy
    retry = await wechat.deliver(xml)  # WeChat's retry at the 5-second mark, same event
    await wechat.settle()
    passive_replies = [r for r in (first, retry) if wechat.server.read_reply(r.text) is not None]
    assert len(passive_replies) + len(wechat.fake.customer_messages(OPENID)) == 1
    assert len(await wechat.stack.store.inbound_log(key(), 10)) == 1


async def test_retry_after_slow_handling_carries_the_reply_passively_and_never_twice(
    wechat: WeChatRig,
) -> None:
    xml = wechat.server.event(OPENID, "CLICK", "slow")
    first = await wechat.deliver(xml)
    assert first.text == "success"
    await wechat.channel.drain_background()  # the flow has finished; its reply is still held
    retry = await wechat.deliver(xml)
    text = wechat.server.read_reply(retry.text)
    assert text is not None
    assert "请输入姓名：" in text["Content"]
    await wechat.settle()
    assert wechat.fake.customer_messages(OPENID) == []  # the passive answer was the only one
    assert await outbox_statuses(wechat) == [OutboxStatus.PASSIVE]
    # a third try of the same event gets the same answer again
    third = await wechat.deliver(xml)
    assert wechat.server.read_reply(third.text) == text | {
        "CreateTime": wechat.server.read_reply(third.text)["CreateTime"]
    }  # type: ignore[index]


async def test_three_identical_deliveries_have_one_effect_and_the_same_answer(wechat: WeChatRig) -> None:
    xml = wechat.server.text(OPENID, "菜单", msg_id=777)
    callback = wechat.server.sign(xml)
    responses = await asyncio.gather(
        *(wechat.client.post("/wechat", params=callback.query, content=callback.body) for _ in range(3))
    )
    assert [r.status_code for r in responses] == [200, 200, 200]
    bodies = {wechat.server.read_reply(r.text)["Content"] for r in responses}  # type: ignore[index]
    assert len(bodies) == 1
    log = await wechat.stack.store.inbound_log(key(), 10)
    assert [entry["message_id"] for entry in log] == ["777"]
    await wechat.settle()
    assert wechat.fake.customer_messages() == []


async def test_subscription_popup_and_change_events_are_stored_as_consent(wechat: WeChatRig) -> None:
    popup = (
        "<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[TPL_A]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List>"
        "<List><TemplateId><![CDATA[TPL_B]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List>"
        "</SubscribeMsgPopupEvent>"
    )
    response = await wechat.deliver(wechat.server.event(OPENID, "subscribe_msg_popup_event", inner=popup))
    assert response.text == "success"
    assert await wechat.channel.consents.may_send(OPENID, "TPL_A")
    assert not await wechat.channel.consents.may_send(OPENID, "TPL_B")
    change = (
        "<SubscribeMsgChangeEvent><List><TemplateId><![CDATA[TPL_A]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString></List></SubscribeMsgChangeEvent>"
    )
    await wechat.deliver(wechat.server.event(OPENID, "subscribe_msg_change_event", inner=change))
    assert not await wechat.channel.consents.may_send(OPENID, "TPL_A")
    async with wechat.stack.store.engine.connect() as conn:
        assert len((await conn.execute(sa.select(wechat_subscriptions))).all()) == 2
    assert await wechat.stack.store.get(key()) is None  # consent is not a conversation turn


async def test_qr_scene_opens_the_named_flow_on_follow(wechat: WeChatRig) -> None:
    text = await passive(wechat, wechat.server.event(OPENID, "subscribe", "qrscene_form"))
    assert text.startswith("欢迎关注")
    row = await wechat.stack.store.get(key())
    assert row is not None
    assert row.state["run"]["flow"] == "form"


async def test_a_passive_summary_shows_the_owner_full_values_while_stored_copies_stay_sealed(
    wechat: WeChatRig,
) -> None:
    server = wechat.server
    id_number = "11010519491231002X"
    menu = await passive(wechat, server.text(OPENID, "菜单"))
    await passive(wechat, server.text(OPENID, option_numbers(menu)["测试表单"]))
    kinds = await passive(wechat, server.text(OPENID, "王芳"))
    await passive(wechat, server.menu_tap(OPENID, option_links(kinds)["个人"], "个人"))
    await passive(wechat, server.text(OPENID, "30"))
    await passive(wechat, server.text(OPENID, id_number))
    upload = server.media(OPENID, "file", wechat.fake.add_media(PDF, "application/pdf", "scan.pdf"))
    summary = await passive(wechat, upload)
    assert "王芳" in summary
    assert id_number in summary  # the owner checks what they typed, in the passive reply too
    # WeChat's retry of the same delivery gets the same full answer, read from the sealed record
    assert await passive(wechat, upload) == summary
    await wechat.settle()
    assert wechat.fake.customer_messages() == []
    stored = [m.reply.text for m in await wechat.stack.store.delivered(key(), 0, 100)]
    assert not any(id_number in text for text in stored)
    assert any("110*************2X" in text for text in stored)  # the masked copy is what is kept
    async with wechat.stack.store.engine.connect() as conn:
        recorded = [str(b) for b in (await conn.execute(sa.select(wechat_deliveries.c.body))).scalars()]
    assert recorded
    assert not any(id_number in body for body in recorded)
