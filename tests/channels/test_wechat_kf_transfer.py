"""WeChat's own 客服 system, chosen by setting: asking for a human hands the session over."""

from __future__ import annotations

from bot.engine.messages import ConversationKey
from bot.engine.state import Owner
from tests.channels.conftest import WeChatRig


async def test_asking_for_a_human_answers_with_the_transfer_and_silences_the_bot(wechat: WeChatRig) -> None:
    wechat.channel.receiver.transfer_to_kf = lambda key: key.channel == "wechat"
    answer = await wechat.deliver(wechat.server.text("openid-kf", "人工"))
    assert answer.status_code == 200
    reply = wechat.server.read_reply(answer.text)
    assert reply is not None
    assert reply["MsgType"] == "transfer_customer_service"
    key = ConversationKey("wechat", wechat.channel.settings.appid, "openid-kf")
    owner = await wechat.stack.store.owner_of(key)
    assert not Owner.is_bot(owner)
    assert owner == "staff:wechat-kf"


async def test_without_the_setting_the_user_stays_with_our_own_desk(wechat: WeChatRig) -> None:
    answer = await wechat.deliver(wechat.server.text("openid-desk", "人工"))
    reply = wechat.server.read_reply(answer.text)
    assert reply is not None
    assert reply["MsgType"] == "text"
    assert "人工客服" in reply["Content"]
