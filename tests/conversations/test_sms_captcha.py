"""The web chat asks for an image captcha when the platform wants one before another SMS code,
then sends the code once it is solved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import build_container
from bot.engine.messages import ReplyKind
from bot.testing import ChatHarness, ManualClock, RecordingSender
from seal_platform import captcha
from tests.conversations.conftest import Service, service_settings


@pytest.fixture
async def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Service]:
    """The whole service, its chat on the "web" channel, a captcha after one code an hour."""
    monkeypatch.setenv("PLATFORM_SMS_CAPTCHA_AFTER", "1")
    clock = ManualClock()
    sender = RecordingSender(channel="web")
    container = await build_container(service_settings(tmp_path), clock=clock, extra_senders={"web": sender})
    yield Service(container, ChatHarness(container.engine, container.dispatcher, sender, clock), clock)
    await container.stop()


async def test_a_second_code_from_one_web_session_needs_the_captcha_solved(
    web: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = web.chat
    assert chat.key("u1").channel == "web"
    await chat.say("注册")
    assert "验证码已发送" in " ".join(await chat.say("13800138001"))
    # Cancelling a process that holds answers asks first (issue 13): confirm it.
    assert "确定要取消「注册账号」吗" in " ".join(await chat.say("取消"))
    await chat.say("确认取消")

    # The captcha's text is random; a test reads no images, so it chooses the text.
    monkeypatch.setattr(captcha, "new_answer", lambda: "K7PM")
    await chat.say("注册")
    asked = await chat.say("13800138002")
    assert "4 个字符" in " ".join(asked)
    images = [m.reply for m in chat.sender.sent if m.reply.kind is ReplyKind.IMAGE]
    assert images
    wrong = await chat.say("XXXX")
    assert "图形验证码不正确" in " ".join(wrong)
    sent = await chat.say("k7pm")
    assert "验证码已发送" in " ".join(sent)
