"""WeChat's 5-second contract: one deadline per callback from its arrival, the fall-back to
"success" + the customer-service API (every reply once, in order, at once), and the defects
the load run found (menu key, event ids, per-user passive records, DTDs, media retries)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from bot.channels.cli_channels import channels_health
from bot.channels.local_server import free_port
from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.settings import DEFAULT_MENU
from bot.engine.messages import ConversationKey, Inbound
from bot.engine.store import OutboxStatus
from bot.engine.tables import outbox
from handlers import catalogue
from tests.channels.conftest import PATIENT, WX_APPID, WeChatRig, _wechat_rig, wechat_settings

OPENID = "oUser_0000000000000000000042"
OTHER = "oUser_0000000000000000000043"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x03" * 300


class MovableClock:
    """Real time plus an offset a test moves: "the deadline has passed" without waiting."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
async def clocked(
    db_url: str, fake_wechat: tuple[FakeWeChat, str]
) -> AsyncIterator[tuple[WeChatRig, MovableClock]]:
    clock = MovableClock()
    # a hold far longer than any test: a reply that goes out at once was released, not expired
    async for rig in _wechat_rig(db_url, fake_wechat, clock=clock, passive_hold=60.0):
        rig.stack.dispatcher.clock = clock  # one clock in the process, as bot.app wires it
        yield rig, clock


@pytest.fixture
async def patient(db_url: str, fake_wechat: tuple[FakeWeChat, str]) -> AsyncIterator[WeChatRig]:
    """A rig with WeChat's own budget (``PATIENT``)."""
    async for rig in _wechat_rig(db_url, fake_wechat, **PATIENT):
        yield rig


def key(openid: str = OPENID) -> ConversationKey:
    return ConversationKey("wechat", WX_APPID, openid)


async def statuses(rig: WeChatRig) -> list[str]:
    async with rig.stack.store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(outbox.c.status).order_by(outbox.c.id))).all()
    return [r.status for r in rows]


def passive_text(rig: WeChatRig, body: str) -> str:
    reply = rig.server.read_reply(body)
    return reply["Content"] if reply else ""


def texts_sent(fake: FakeWeChat, openid: str) -> list[str]:
    found = []
    for body in fake.customer_messages(openid):
        if body.get("msgtype") == "text":
            found.append(body["text"]["content"])
        elif body.get("msgtype") == "msgmenu":
            found.append(body["msgmenu"]["head_content"])
    return found


def pass_the_deadline_while_handling(rig: WeChatRig, clock: MovableClock) -> None:
    """The callback arrives in time, then the clock jumps past its deadline while the engine
    handles the message: the commit that would claim the replies comes after the deadline,
    while the webhook is still waiting (its own timer runs on real time)."""

    def jump(_inbound: Inbound) -> None:
        clock.offset = timedelta(seconds=30)

    rig.stack.engine.hooks.on_inbound.append(jump)


async def test_a_reply_is_never_claimed_passive_after_the_deadline(
    clocked: tuple[WeChatRig, MovableClock],
) -> None:
    rig, clock = clocked
    pass_the_deadline_while_handling(rig, clock)
    response = await rig.deliver(rig.server.text(OPENID, "菜单"))
    assert response.text == "success"
    assert OutboxStatus.PASSIVE not in await statuses(rig)
    # released at once (the hold is 60 s): one round of the dispatcher sends it
    await rig.channel.drain_background()
    await rig.stack.dispatcher.drain()
    assert await statuses(rig) == [OutboxStatus.SENT]
    assert len(rig.fake.customer_messages(OPENID)) == 1


async def test_replies_that_missed_the_window_go_out_at_once_once_and_in_order(
    clocked: tuple[WeChatRig, MovableClock],
) -> None:
    rig, _ = clocked
    first = await rig.deliver(rig.server.event(OPENID, "CLICK", "slow"))
    assert first.text == "success"  # the slow flow outlasts the budget
    await rig.channel.drain_background()  # the flow finished: its reply is released
    # the next message arrives before the dispatcher ran: its answer must not overtake
    second = await rig.deliver(rig.server.text(OPENID, "取消"))
    assert second.text == "success"
    await rig.channel.drain_background()
    await rig.stack.dispatcher.drain()
    sent = texts_sent(rig.fake, OPENID)
    assert len(sent) == 3
    assert "请输入姓名" in sent[0]  # the slow flow's question first, then the answer to 取消
    assert sent[1].startswith("已取消")
    assert await statuses(rig) == [OutboxStatus.SENT] * 3
    await rig.stack.dispatcher.drain()
    assert len(rig.fake.customer_messages(OPENID)) == 3  # nothing twice


async def test_the_welcome_reaches_a_new_follower_on_the_success_path(
    clocked: tuple[WeChatRig, MovableClock],
) -> None:
    rig, clock = clocked
    pass_the_deadline_while_handling(rig, clock)
    response = await rig.deliver(rig.server.event(OPENID, "subscribe"))
    assert response.text == "success"
    await rig.channel.drain_background()
    await rig.stack.dispatcher.drain()
    sent = texts_sent(rig.fake, OPENID)
    assert sent[0].startswith("欢迎关注")
    assert len(sent) == 2  # the welcome, then the menu


async def test_two_menu_clicks_in_one_second_both_take_effect(wechat: WeChatRig) -> None:
    at = int(datetime.now(UTC).timestamp())
    for click in ("menu", "form"):
        response = await wechat.deliver(wechat.server.event(OPENID, "CLICK", click, create_time=at))
        assert response.status_code == 200
    # on a loaded machine a click may outlast the passive window and finish in the background
    await wechat.channel.drain_background()
    log = await wechat.stack.store.inbound_log(key(), 10)
    assert len(log) == 2
    row = await wechat.stack.store.get(key())
    assert row is not None
    assert row.state["run"]["flow"] == "form"


async def test_the_same_msgid_from_two_users_gets_each_their_own_answer(patient: WeChatRig) -> None:
    into_form = await patient.deliver(patient.server.event(OPENID, "CLICK", "form"))
    assert "请输入姓名" in passive_text(patient, into_form.text)
    first = await patient.deliver(patient.server.text(OPENID, "王芳", msg_id=555))
    second = await patient.deliver(patient.server.text(OTHER, "菜单", msg_id=555))
    mine, theirs = passive_text(patient, first.text), passive_text(patient, second.text)
    assert mine
    assert theirs
    assert mine != theirs
    assert "测试表单" in theirs  # the other user's own menu


async def test_text_that_mentions_a_doctype_inside_cdata_is_ordinary_text(patient: WeChatRig) -> None:
    response = await patient.deliver(
        patient.server.text(OPENID, '<!DOCTYPE html> 和 <!ENTITY x "y"> 是什么？')
    )
    assert response.status_code == 200
    assert passive_text(patient, response.text)
    log = await patient.stack.store.inbound_log(key(), 10)
    assert "<!DOCTYPE html>" in log[0]["body"]["text"]


async def test_a_real_dtd_is_still_refused(wechat: WeChatRig) -> None:
    xml = '<!DOCTYPE xml [<!ENTITY a "b">]>' + wechat.server.text(OPENID, "&a;")
    response = await wechat.deliver(xml)
    assert response.status_code == 400
    assert await wechat.stack.store.get(key()) is None


async def test_a_retried_image_message_is_downloaded_once(wechat: WeChatRig) -> None:
    await wechat.deliver(wechat.server.event(OPENID, "CLICK", "form"))
    media_id = wechat.fake.add_media(PNG, "image/png", "scan.png")
    xml = wechat.server.media(OPENID, "image", media_id)
    first = await wechat.deliver(xml)
    retry = await wechat.deliver(xml)
    assert first.status_code == retry.status_code == 200
    assert len(wechat.fake.calls_to("media/get")) == 1
    assert len(await wechat.stack.store.inbound_log(key(), 10)) == 2  # the click and the image


async def test_bytes_that_are_no_image_sent_as_an_image_are_named_so(patient: WeChatRig) -> None:
    media_id = patient.fake.add_media(b"GIF89a" + b"\x00" * 64, "image/gif", "x.gif")
    response = await patient.deliver(patient.server.media(OPENID, "image", media_id))
    text = passive_text(patient, response.text)
    assert text == "这张图片无法识别：请发送 JPG 或 PNG 格式的图片，或 PDF 文件。"


def test_every_default_menu_key_opens_a_flow_or_a_command() -> None:
    flows = catalogue.flows()
    commands = {"start", "menu", "help", "cancel", "human", "back"}
    keys = [sub["key"] for button in DEFAULT_MENU["button"] for sub in button.get("sub_button", [])]
    assert "my_orders" in keys
    assert [k for k in keys if k not in commands and flows.get(k) is None] == []


async def test_channels_health_asks_wechat_instead_of_trusting_a_cached_token(
    fake_wechat: tuple[FakeWeChat, str], db_url: str
) -> None:
    _, base = fake_wechat
    lines: list[str] = []
    assert await channels_health(wechat_settings(base), None, db_url, out=lines.append) == 0
    lines.clear()
    wrong = wechat_settings(base, secret=SecretStr("wrong"))  # the good token is still cached
    assert await channels_health(wrong, None, db_url, out=lines.append) == 1
    assert "wechat access token: INVALID" in lines
    lines.clear()
    unreachable = wechat_settings(f"http://127.0.0.1:{free_port()}")
    assert await channels_health(unreachable, None, db_url, out=lines.append) == 1
    assert "wechat access token: INVALID" in lines


def test_a_bad_menu_file_is_one_line_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    menu = tmp_path / "menu.json"
    menu.write_text('{"button": [', encoding="utf-8")
    monkeypatch.setenv("WECHAT_MENU_FILE", str(menu))
    monkeypatch.setenv("SEALBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    monkeypatch.setattr(sys, "argv", ["sealbot", "wechat-menu"])
    assert main(["wechat-menu"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sealbot: configuration error: WECHAT_MENU_FILE:")
