"""WeChat's own 客服 system (``SUPPORT_WECHAT_KF_TRANSFER``) with our desk installed: the user gets
the transfer and nothing else, our inbox has no ticket, and when WeChat closes the session
(``kf_close_session``) the bot answers the user's next message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.receiver import WECHAT_KF_OWNER
from bot.engine.messages import ConversationKey
from bot.engine.state import Owner
from bot.support.models import SupportTicket
from bot.support.service import SupportDesk
from bot.support.wiring import attach_hooks
from tests.channels.conftest import PATIENT, WeChatRig, _wechat_rig, fake_wechat  # noqa: F401 - a fixture used below
from tests.support.conftest import create_support_tables, desk_settings

OPENID = "openid-kf"


@pytest.fixture
async def wechat(db_url: str, fake_wechat: tuple[FakeWeChat, str]) -> AsyncIterator[WeChatRig]:  # noqa: F811 - shadows the import
    """The rig with WeChat's own passive budget (4.5 s) instead of the channel tests' short one:
    the hand-over to 客服 can only be made by a passive reply, and these tests are about the
    hand-over, not about missing the deadline (tests/channels/test_wechat_deadline.py is). With
    1.5 s a loaded CI machine could miss it and the test measured the machine."""
    async for rig in _wechat_rig(db_url, fake_wechat, **PATIENT):
        yield rig


@pytest.fixture
async def kf_desk(wechat: WeChatRig) -> SupportDesk:
    db = wechat.stack.store.engine  # type: ignore[attr-defined]
    await create_support_tables(db)
    desk = SupportDesk(
        engine=wechat.stack.engine,
        store=wechat.stack.store,  # type: ignore[arg-type]
        db=db,
        settings=desk_settings(wechat_kf_transfer=True),
        clock=wechat.channel.clock,
    )
    attach_hooks(wechat.stack.engine, desk)
    wechat.channel.receiver.transfer_to_kf = desk.transfers_to_wechat_kf
    return desk


async def bot_answers(wechat: WeChatRig, text: str) -> list[str]:
    """What the user hears after writing ``text``: the passive reply and customer-service texts."""
    answer = await wechat.deliver(wechat.server.text(OPENID, text))
    await wechat.settle()
    reply = wechat.server.read_reply(answer.text)
    said = [reply["Content"]] if reply is not None and reply.get("MsgType") == "text" else []
    return said + [m["text"]["content"] for m in wechat.fake.customer_messages(OPENID) if "text" in m]


async def test_the_kf_transfer_is_all_the_user_gets_and_no_ticket_waits_in_our_inbox(
    wechat: WeChatRig,
    kf_desk: SupportDesk,
) -> None:
    answer = await wechat.deliver(wechat.server.text(OPENID, "人工"))
    reply = wechat.server.read_reply(answer.text)
    assert reply is not None
    assert reply["MsgType"] == "transfer_customer_service"
    await wechat.settle()
    assert wechat.fake.customer_messages(OPENID) == []  # no queue text of ours
    key = ConversationKey("wechat", wechat.channel.settings.appid, OPENID)
    assert await wechat.stack.store.owner_of(key) == WECHAT_KF_OWNER
    async with kf_desk.sessions() as session:
        assert list(await session.scalars(sa.select(SupportTicket))) == []
    assert await kf_desk.open_tickets() == []


async def test_when_wechat_closes_the_kf_session_the_next_message_is_answered(
    wechat: WeChatRig,
    kf_desk: SupportDesk,
) -> None:
    await wechat.deliver(wechat.server.text(OPENID, "人工"))
    await wechat.settle()
    key = ConversationKey("wechat", wechat.channel.settings.appid, OPENID)
    closed = await wechat.deliver(wechat.server.event(OPENID, "kf_close_session"))
    assert closed.status_code == 200
    await wechat.settle()
    assert Owner.is_bot(await wechat.stack.store.owner_of(key))
    said = await bot_answers(wechat, "你好")
    assert len(said) == 1
    assert said[0].startswith("您好，我是电子印章办理助手。请选择要办理的业务，或直接告诉我您想做什么：\n1. ")


async def test_a_message_after_the_kf_session_timed_out_is_answered_by_the_bot(
    wechat: WeChatRig,
    kf_desk: SupportDesk,
) -> None:
    # No kf_close_session arrives (the session ran out): the next message reaching us is answered.
    await wechat.deliver(wechat.server.text(OPENID, "人工"))
    await wechat.settle()
    key = ConversationKey("wechat", wechat.channel.settings.appid, OPENID)
    assert await wechat.stack.store.owner_of(key) == WECHAT_KF_OWNER
    said = await bot_answers(wechat, "菜单")
    assert Owner.is_bot(await wechat.stack.store.owner_of(key))
    assert len(said) == 1
    assert said[0].startswith("您好，我是电子印章办理助手。请选择要办理的业务，或直接告诉我您想做什么：\n1. ")
