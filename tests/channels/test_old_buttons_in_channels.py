"""An old cancel button, tapped in a channel's own way after the conversation moved on, only
says it expired and asks the current question again (issue 13, 1): a Telegram inline button's
callback data and a WeChat msgmenu link's id both name the prompt they were sent with."""

from __future__ import annotations

from tests.channels.conftest import TelegramRig, WeChatRig
from tests.channels.test_telegram_channel import USER, key, say, tap
from tests.channels.test_wechat_channel import OPENID, passive
from tests.channels.test_wechat_channel import key as wechat_key
from tests.channels.wechat_server import option_links, option_numbers


async def test_an_old_telegram_cancel_button_cancels_nothing(telegram: TelegramRig) -> None:
    fake = telegram.fake
    await say(telegram, "/form")
    await say(telegram, "Li Lei")
    old_message, old_cancel = fake.button(USER, "Cancel")
    assert len(old_cancel.encode()) <= 64
    await tap(telegram, "Company")
    await say(telegram, "Acme")
    before = await telegram.stack.store.get(key(telegram))
    assert await telegram.post(fake.callback_update(USER, old_cancel, message_id=old_message)) == 200
    assert "expired" in fake.sent_texts(USER)[-2]
    assert "age" in fake.sent_texts(USER)[-1]
    after = await telegram.stack.store.get(key(telegram))
    assert before is not None
    assert after is not None
    assert after.state["run"] is not None
    assert after.state["run"]["answers"] == before.state["run"]["answers"]


async def test_an_old_wechat_cancel_link_cancels_nothing(wechat: WeChatRig) -> None:
    server = wechat.server
    menu = await passive(wechat, server.event(OPENID, "subscribe"))
    ask_name = await passive(wechat, server.text(OPENID, option_numbers(menu)["测试表单"]))
    old_cancel = option_links(ask_name)["取消"]
    await passive(wechat, server.text(OPENID, "王芳"))
    answer = await passive(wechat, server.menu_tap(OPENID, old_cancel, "取消"))
    assert "这个按钮已过期" in answer
    assert "请选择类型" in answer  # the current question again
    row = await wechat.stack.store.get(wechat_key())
    assert row is not None
    assert row.state["run"]["answers"]["name"] == "王芳"
