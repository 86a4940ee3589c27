"""Bad WeChat input is refused with the right status or answered helpfully: never a 500,
never a change of state. Plus the quota, media and token behaviour against the fake API."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bot.channels.wechat.tables import wechat_cs_backlog
from bot.engine.messages import ConversationKey, Origin, OutboundMessage, Reply
from bot.errors import DeliveryParked
from tests.channels.conftest import WX_APPID, WeChatRig
from tests.channels.wechat_server import OA_ID, WeChatServer

OPENID = "oUser_0000000000000000000002"
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<xml><ToUserName>x</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f"<xml><ToUserName>x</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&x;</Content><MsgId>2</MsgId></xml>"
)

Send = Callable[[WeChatRig], Any]


async def _post(rig: WeChatRig, query: dict[str, str], body: bytes) -> Any:
    return await rig.client.post("/wechat", params=query, content=body)


async def unsigned(rig: WeChatRig) -> Any:
    return await _post(rig, {}, rig.server.text(OPENID, "hi").encode())


async def mis_signed(rig: WeChatRig) -> Any:
    callback = rig.server.sign(rig.server.text(OPENID, "hi"))
    callback.query["signature"] = "a" * 40
    return await _post(rig, callback.query, callback.body)


async def stale(rig: WeChatRig) -> Any:
    callback = rig.server.sign(rig.server.text(OPENID, "hi"), timestamp=int(time.time()) - 3600)
    return await _post(rig, callback.query, callback.body)


async def replayed_nonce(rig: WeChatRig) -> Any:
    first = rig.server.sign(rig.server.text("oLegitimateUser000000000000", "hi"), nonce="12345")
    assert (await _post(rig, first.query, first.body)).status_code == 200
    # the same signed query with another body: the plain signature does not cover the body
    forged = rig.server.text(OPENID + "X", "forged")
    return await _post(rig, first.query, forged.encode())


def signed(body: str | bytes) -> Send:
    async def send(rig: WeChatRig) -> Any:
        callback = rig.server.sign(body)
        return await _post(rig, callback.query, callback.body)

    return send


def message(xml_factory: Callable[[WeChatServer], str]) -> Send:
    async def send(rig: WeChatRig) -> Any:
        callback = rig.server.sign(xml_factory(rig.server))
        return await _post(rig, callback.query, callback.body)

    return send


DOCTYPE_ONLY = f"<!DOCTYPE xml><xml><FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType></xml>"
NON_UTF8 = (
    (
        f"<xml><ToUserName>{OA_ID}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>"
    ).encode()
    + "你好".encode("gbk")
    + b"</Content><MsgId>3</MsgId></xml>"
)
OVERSIZED = f"<xml><FromUserName>{OPENID}</FromUserName><Content>{'x' * 20000}</Content></xml>"

# (name, how to send, expected status, expected passive text fragment or None for "success")
CASES: list[tuple[str, Send, int, str | None]] = [
    ("unsigned", unsigned, 403, None),
    ("mis-signed", mis_signed, 403, None),
    ("stale timestamp", stale, 403, None),
    ("replayed nonce", replayed_nonce, 403, None),
    ("XXE", signed(XXE), 400, None),
    ("billion laughs", signed(BILLION_LAUGHS), 400, None),
    ("DOCTYPE", signed(DOCTYPE_ONLY), 400, None),
    ("oversized body", signed(OVERSIZED), 413, None),
    ("non-UTF-8 body", signed(NON_UTF8), 400, None),
    ("malformed XML", signed("<xml><FromUserName>o</xml"), 400, None),
    ("not a message", signed("<xml><Hello>1</Hello></xml>"), 400, None),
    ("unknown message type", message(lambda s: s.media(OPENID, "hologram", "M1")), 200, "暂不支持"),
    ("voice without recognition", message(lambda s: s.media(OPENID, "voice", "M1")), 200, "语音"),
    ("location", message(lambda s: s.media(OPENID, "location", "M1")), 200, "暂不支持"),
    ("unknown event", message(lambda s: s.event(OPENID, "teleport", "x")), 200, None),
    ("unsubscribe", message(lambda s: s.event(OPENID, "unsubscribe")), 200, None),
    ("expired media", message(lambda s: s.media(OPENID, "image", "NO_SUCH_MEDIA")), 200, "没能读取"),
]


@pytest.mark.parametrize(("send", "status", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_hostile_or_unsupported_callback_is_refused_or_answered_without_state_change(
    wechat: WeChatRig, send: Send, status: int, fragment: str | None
) -> None:
    response = await send(wechat)
    assert response.status_code == status
    if status == 200:
        reply = wechat.server.read_reply(response.text)
        if fragment is None:
            assert reply is None
        else:
            assert reply is not None
            assert fragment in reply["Content"]
    await wechat.settle()
    for openid in (OPENID, OPENID + "X"):
        assert await wechat.stack.store.get(ConversationKey("wechat", WX_APPID, openid)) is None
    assert wechat.fake.customer_messages() == []


async def test_image_is_downloaded_at_once_into_the_media_store(wechat: WeChatRig) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x05" * 400
    media_id = wechat.fake.add_media(png, "image/png", "scan.png")
    await wechat.deliver(wechat.server.media(OPENID, "image", media_id))
    assert [c.query["media_id"] for c in wechat.fake.calls_to("media/get")] == [media_id]
    assert png in wechat.stack.media.files.values()


async def test_media_over_the_limit_gets_a_clear_reply_and_never_reaches_the_engine(
    wechat: WeChatRig,
) -> None:
    big = b"%PDF-1.4\n" + b"0" * (70 * 1024)
    media_id = wechat.fake.add_media(big, "application/pdf", "big.pdf")
    response = await wechat.deliver(wechat.server.media(OPENID, "file", media_id))
    reply = wechat.server.read_reply(response.text)
    assert reply is not None
    assert "64 KB" in reply["Content"]
    assert wechat.stack.media.files == {}
    assert await wechat.stack.store.get(ConversationKey("wechat", WX_APPID, OPENID)) is None


def push(text: str, *, proactive: bool = False) -> OutboundMessage:
    from datetime import UTC, datetime

    return OutboundMessage(
        1,
        ConversationKey("wechat", WX_APPID, OPENID),
        Reply.text_reply(text),
        Origin.BOT,
        datetime.now(UTC),
        in_reply_to=None if proactive else "m1",
    )


async def open_window(rig: WeChatRig) -> None:
    """What a user's message opens: five customer-service messages within 48 hours."""
    settings = rig.channel.settings
    await rig.channel.quota.open(
        OPENID,
        allowance=settings.cs_messages_per_message,
        lasts=timedelta(hours=settings.cs_window_hours),
        now=rig.channel.clock.now(),
    )


async def test_quota_allows_five_then_keeps_the_rest_and_says_how_many_wait(wechat: WeChatRig) -> None:
    await open_window(wechat)
    parked = []
    for n in range(7):
        try:
            await wechat.channel.sender.send(push(f"status {n}"))
        except DeliveryParked:
            parked.append(n)
    assert parked == [4, 5, 6]  # kept for later: the outbox records them as parked, not sent
    texts = [m["text"]["content"] for m in wechat.fake.customer_messages(OPENID)]
    assert texts[:4] == ["status 0", "status 1", "status 2", "status 3"]
    assert len(texts) == 5
    assert "还有 1 条" in texts[4]  # the fifth slot says more are waiting
    backlog = await wechat.channel.quota.backlog(OPENID)
    assert [r.text for _, r in backlog] == ["status 4", "status 5", "status 6"]
    # the user writes again: a new allowance, and the backlog is delivered
    await open_window(wechat)
    assert await wechat.channel.sender.flush_backlog(ConversationKey("wechat", WX_APPID, OPENID)) == 3
    texts = [m["text"]["content"] for m in wechat.fake.customer_messages(OPENID)]
    assert texts[5:] == ["status 4", "status 5", "status 6"]


async def test_45047_from_wechat_exhausts_the_quota_and_keeps_the_message(wechat: WeChatRig) -> None:
    await open_window(wechat)
    wechat.fake.fail_next("message/custom/send", 45047)
    await wechat.channel.sender.send(push("hello"))
    allowance = await wechat.channel.quota.get(OPENID, wechat.channel.clock.now())
    assert allowance is not None
    assert allowance.left(wechat.channel.clock.now()) == 0
    async with wechat.stack.store.engine.connect() as conn:
        assert len((await conn.execute(sa.select(wechat_cs_backlog))).all()) == 1


async def test_proactive_message_outside_the_window_uses_the_accepted_subscription(
    wechat: WeChatRig,
) -> None:
    wechat.channel.settings.subscribe_template_id = "TPL_REMIND"
    await wechat.channel.consents.record(OPENID, "TPL_REMIND", "accept", wechat.channel.clock.now())
    await wechat.channel.sender.send(push("您的印章将于 30 天后到期", proactive=True))
    (call,) = wechat.fake.calls_to("message/template/subscribe")
    assert call.body["data"]["content"]["value"].startswith("您的印章")
    assert not await wechat.channel.consents.may_send(OPENID, "TPL_REMIND")  # one-time: spent
    with pytest.raises(DeliveryParked):
        await wechat.channel.sender.send(push("second reminder", proactive=True))
    assert len(wechat.fake.calls_to("message/template/subscribe")) == 1
    assert [r.text for _, r in await wechat.channel.quota.backlog(OPENID)] == ["second reminder"]


async def test_revoked_token_is_refreshed_once_and_the_call_succeeds(wechat: WeChatRig) -> None:
    await open_window(wechat)
    wechat.fake.revoke_token()
    await wechat.channel.sender.send(push("after revoke"))
    assert [m["text"]["content"] for m in wechat.fake.customer_messages(OPENID)] == ["after revoke"]
    assert len(wechat.fake.calls_to("stable_token")) == 2


async def test_menu_is_published_and_health_reports_it(wechat: WeChatRig) -> None:
    before = await wechat.channel.health()
    assert before.token_valid
    assert before.menu_buttons is None
    menu = await wechat.channel.publish_menu()
    assert wechat.fake.menu == menu
    after = await wechat.channel.health()
    assert after.menu_buttons == 3
