"""Remote platform mode end to end through the bot: the platform runs as its own process
(``sealbot-platform serve``), the bot as ``sealbot serve`` with ``SEALBOT_PLATFORM_MODE=remote``,
its platform URL and service key (``bench.topology``, one worker behind the proxy), and one
person uses only what a person has: the web chat's HTTP API, the platform's dev SMS page, the
secure password page and the sandbox pay page.

Every platform call of the bot here crosses real HTTP with the service key; the "paid" push
reaches the chat through the platform's event feed, not an in-process bus.
"""

from __future__ import annotations

import httpx
import pytest

from bench.topology import Cluster
from tests.conversations.test_apply_enterprise import AGENT_ID, COMPANY, LEGAL_REP_ID, USCC, pdf_scan
from tests.deploy.conftest import StartCluster
from tests.deploy.webchat import Browser, sms_code
from tests.privacy.scans import noisy_png

pytestmark = pytest.mark.postgres

PHONE = "13800138472"
PASSWORD = "Rm7remotePass42"


@pytest.fixture
async def remote(start_cluster: StartCluster) -> Cluster:
    return await start_cluster(1)


async def test_a_web_chat_user_registers_verifies_applies_and_is_told_of_the_payment_through_a_remote_platform(
    remote: Cluster,
) -> None:
    chat = Browser(remote.proxy.url)
    try:
        await chat.open()
        # Registration: phone, the code from the platform's SMS page, the password on the secure page.
        await chat.say("注册")
        assert "验证码已发送" in await chat.say(PHONE)
        linked = await chat.say(await sms_code(chat.http, PHONE))
        assert "/secure/password" in linked
        mark = len(chat.seen)
        await chat.use_password_page(PASSWORD, "注册完成")
        await chat.wait_for("注册成功", since=mark)

        # Logging out and back in with the password (typed on the secure page, not in the chat).
        await chat.log_out()
        await chat.say("登录")
        await chat.say(PHONE)
        assert "/secure/password" in await chat.tap("手机号 + 密码")
        mark = len(chat.seen)
        await chat.use_password_page(PASSWORD, "登录")
        await chat.wait_for("登录成功", since=mark)

        # Real-name verification, checked by the platform.
        await chat.say("实名认证")
        await chat.say("张三")
        await chat.say(AGENT_ID)
        assert "实名认证成功" in await chat.tap("确认无误")

        # The company seal application, its two scans uploaded through the chat.
        await chat.say("我要申请企业公章")
        await chat.tap("只办企业公章")
        await chat.say(COMPANY)
        await chat.say(USCC)
        await chat.say("李四")
        await chat.say(LEGAL_REP_ID)
        assert "营业执照" in await chat.tap(PHONE)
        assert "文件检查通过" in await chat.upload(noisy_png(), "营业执照.png", expect="1 年 ¥300.00")
        assert "印模采集表" in await chat.tap("1 年")
        await chat.upload(pdf_scan(), "印模采集表.pdf", expect="请输入收件人姓名")
        await chat.say("王五")
        await chat.tap(PHONE)
        await chat.say("广东省 广州市 天河区")
        summary = await chat.say("天河路 100 号 20 楼")
        assert COMPANY in summary
        assert USCC in summary
        submitted = await chat.tap("确认无误")
        assert "申请已提交" in submitted
        assert "¥300.00" in submitted
        pay_link = chat.last_link("/platform/pay/")
        assert pay_link.startswith(remote.proxy.url + "/platform/pay/")
        assert "还没有收到这笔付款" in await chat.tap("我已支付")

        # Paying on the platform's sandbox page, as the payer's browser does.
        mark = len(chat.seen)
        async with httpx.AsyncClient(timeout=10) as payer:
            page = await payer.get(pay_link)
            assert page.status_code == 200, page.text
            pressed = await payer.post(pay_link)
            assert pressed.status_code == 303, pressed.text
        # The platform's event reaches the chat by itself: no message from the user in between.
        assert "的付款 ¥300.00" in await chat.wait_for("已收到订单", since=mark)
        await chat.wait_for("已进入审核", since=mark)
        # Neither process logged a failure on the way (a background loop that died, a refused call).
        for process in (remote.platform, *remote.bots):
            log = process.log.read_text(errors="replace")
            assert "Traceback" not in log, (process.name, log[-3000:])
            assert " ERROR " not in log, (process.name, log[-3000:])
    finally:
        await chat.aclose()
