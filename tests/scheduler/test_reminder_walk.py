"""One seal walked through every reminder (60/30/7/1 days before expiry and the day after) with
the injected clock, once per policy path: the chat within reach, a 订阅通知 with consent, a
模板消息, SMS, e-mail, and nobody reachable. Each step checks the exact request at the WeChat
recorder (bodies field by field), the platform's SMS provider and the local SMTP server, and
the delivery record."""

from __future__ import annotations

import asyncio
import email
import email.utils
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.channels.wechat.api import WeChatApi
from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.proactive import WeChatReach, WeChatReminderSettings, field_value
from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.subscriptions import SubscriptionConsents
from bot.channels.wechat.token import StableTokenProvider
from bot.errors import DeliveryFailed
from bot.testing import ManualClock
from scheduler.deliveries import Status
from scheduler.proactive import ReminderNotice
from scheduler.renew_links import RenewLinks
from scheduler.sms import PlatformReminderMail, PlatformReminderSms
from seal_platform.sms import ConsoleSms, ConsoleSmsProvider
from tests.scheduler.conftest import APPID, SECRET, Bot, Platform, make_bot
from tests.scheduler.seals import SealPlan

DAY = timedelta(days=1)
SUBSCRIBE_TPL, TEMPLATE_TPL = "TPL_SUBSCRIBE_EXPIRY", "TPL_TEMPLATE_EXPIRY"
PUBLIC = "https://bot.example.com"
NAME = "长风科技有限公司"
# The seal is produced a year before it expires; the clock then stands 61 days before expiry at
# 10:00 in Shanghai (START's time of day), so each reminder falls due at 10:00: 2027-11-28.
EXPIRY = "2027年11月28日"
STEPS = [(60, 1), (30, 31), (7, 54), (1, 60), (-1, 62)]


@dataclass
class SmtpSink:
    mails: list[tuple[Envelope, Message]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.mails.append((envelope, email.message_from_bytes(raw)))
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield sink, port
    server.close()
    await server.wait_closed()


@pytest.fixture
def platform_overrides(smtp: tuple[SmtpSink, int]) -> dict[str, Any]:
    """The platform mails (invoices and reminders) through the local SMTP server."""
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp[1],
        "smtp_security": "none",
        "smtp_from": "reminders@seal.example",
    }


def reminder_sms(world: World) -> list[ConsoleSms]:
    """Texts of the reminder template (registration sent its code to the same phone)."""
    return [sms for sms in world.sms.sent if not sms.purpose]


@dataclass
class World:
    bot: Bot
    wechat: WeChatReach | None
    sms: ConsoleSmsProvider
    http: httpx.AsyncClient | None


async def build(
    path: str,
    platform: Platform,
    clock: ManualClock,
    tmp_path: Path,
    recorder: tuple[FakeWeChat, str],
    smtp_port: int,
) -> World:
    sms_provider = ConsoleSmsProvider()
    platform.services.sms_provider = sms_provider
    bot = await make_bot(platform, clock, db_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    wechat: WeChatReach | None = None
    http: httpx.AsyncClient | None = None
    if path in ("subscribe", "template"):
        base = recorder[1]
        db = bot.deliveries.engine
        http = httpx.AsyncClient()
        tokens = StableTokenProvider(
            db=db, appid=APPID, secret=SECRET, api_base_url=f"{base}/cgi-bin/", http=http, clock=clock.now
        )
        wechat = WeChatReach(
            api=WeChatApi(appid=APPID, api_base_url=f"{base}/cgi-bin/", tokens=tokens),
            quota=CustomerServiceQuota(db, APPID),
            consents=SubscriptionConsents(db, APPID),
            settings=WeChatReminderSettings(
                _env_file=None,  # type: ignore[call-arg]
                subscribe_template_id=SUBSCRIBE_TPL if path == "subscribe" else "",
                template_id=TEMPLATE_TPL if path == "template" else "",
            ),
            renew_link=RenewLinks("walk-secret-key", PUBLIC).url,
            clock=clock,
        )
        # The harness's chat channel stands for the WeChat identity the user last wrote from.
        wechat.channel = "test"  # type: ignore[misc]
        bot.job.proactive["test"] = wechat
    if path in ("sms",):
        bot.job.sms = PlatformReminderSms(platform.reminders)
    if path == "email":
        bot.job.mail = PlatformReminderMail(platform.reminders)
    return World(bot, wechat, sms_provider, http)


@asynccontextmanager
async def world_for(
    path: str,
    platform: Platform,
    clock: ManualClock,
    tmp_path: Path,
    recorder: tuple[FakeWeChat, str],
    smtp_port: int,
) -> AsyncIterator[World]:
    world = await build(path, platform, clock, tmp_path, recorder, smtp_port)
    try:
        yield world
    finally:
        if world.http is not None:
            await world.http.aclose()
        await world.bot.chat.close()


@pytest.mark.parametrize("path", ["chat", "subscribe", "template", "sms", "email", "nothing"])
async def test_one_seal_walks_every_threshold_by_each_policy_path(
    path: str,
    platform: Platform,
    clock: ManualClock,
    tmp_path: Path,
    recorder: tuple[FakeWeChat, str],
    smtp: tuple[SmtpSink, int],
) -> None:
    async with world_for(path, platform, clock, tmp_path, recorder, smtp[1]) as world:
        bot, fake, sink = world.bot, recorder[0], smtp[0]
        account = await platform.add_account()
        seal = await platform.add_seal(account, expires_in=61 * DAY, name=NAME)
        start = clock.now()
        if path == "email":
            # The only address the platform has: the one given for the order's e-invoice.
            await platform.request_invoice(account, "finance@changfeng.example")
        mailed = len(sink.mails)
        if path in ("chat", "subscribe", "template"):
            await bot.bind("u1", account)
        for n, (threshold, day) in enumerate(STEPS, start=1):
            clock.at = start + day * DAY
            if path == "subscribe":
                # One message per one-time consent: the user accepted the popup again.
                assert world.wechat is not None
                await world.wechat.consents.record("u1", SUBSCRIBE_TPL, "accept", clock.now())
            await bot.run()
            [delivery] = [d for d in await bot.deliveries.recent() if d.threshold == threshold]
            phrase = "已过期" if threshold == -1 else "即将到期"
            if path == "chat":
                assert len(bot.reminders_to("u1")) == n
                assert (delivery.status, delivery.channel) == (Status.SENT, "test")
                assert delivery.provider_message_id == f"outbox:{delivery.outbox_id}"
            elif path in ("subscribe", "template"):
                endpoint, template, link, last = {
                    "subscribe": ("message/subscribe/bizsend", SUBSCRIBE_TPL, "page", ("thing3", "点击续期")),
                    "template": ("message/template/send", TEMPLATE_TPL, "url", ("phrase3", phrase)),
                }[path]
                calls = fake.calls_to(endpoint)
                assert len(calls) == n
                body = calls[-1].body
                assert set(body) == {"touser", "template_id", "data", link}
                assert (body["touser"], body["template_id"]) == ("u1", template)
                assert body["data"] == {
                    "thing1": {"value": NAME},
                    "time2": {"value": EXPIRY},
                    last[0]: {"value": last[1]},
                }
                assert body[link].startswith(f"{PUBLIC}/r/renew/{seal}.")
                assert (delivery.status, delivery.route) == (Status.SENT, "notice")
                assert delivery.provider_message_id == str(calls[-1].msgid)
                if path == "subscribe":
                    # The one-time consent was spent by this message.
                    assert not await world.wechat.consents.may_send("u1", SUBSCRIBE_TPL)  # type: ignore[union-attr]
            elif path == "sms":
                assert len(reminder_sms(world)) == n
                text = reminder_sms(world)[-1].text
                verb = "已于" if threshold == -1 else "将于"
                assert text.startswith(f"【电子印章】{NAME}的企业印章（编码")
                assert text.endswith(f"{verb}{EXPIRY}到期。续期：在公众号或网页聊天发送“续期”办理。")
                assert (delivery.status, delivery.channel) == (Status.SENT, "sms")
                assert (delivery.provider_message_id or "").startswith("sms-")
                assert delivery.reason is None
                assert delivery.last_error == "chat: no chat identity bound"
            elif path == "email":
                assert len(sink.mails) == mailed + n
                envelope, mail = sink.mails[-1]
                assert envelope.rcpt_tos == ["finance@changfeng.example"]
                assert email.utils.parseaddr(mail["From"])[1] == "reminders@seal.example"
                verb = "已于" if threshold == -1 else "将于"
                assert str(email.header.make_header(email.header.decode_header(mail["Subject"]))) == (
                    f"【电子印章】企业印章「{NAME}」{verb} 2027-11-28 到期"
                )
                assert (delivery.status, delivery.channel) == (Status.SENT, "email")
                assert delivery.provider_message_id == mail["Message-ID"]
            else:
                assert delivery.status == Status.UNDELIVERABLE
                assert delivery.reason == (
                    "chat: no chat identity bound; sms: no SMS sender configured; "
                    "email: no e-mail sender configured"
                )
        # The day after the last reminder, nothing more goes out.
        clock.advance(DAY)
        await bot.run()
        records = await bot.deliveries.recent()
        assert sorted(d.threshold for d in records) == [-1, 1, 7, 30, 60]
        if path == "chat":
            assert len(bot.reminders_to("u1")) == len(STEPS)
        if path == "sms":
            assert len(reminder_sms(world)) == len(STEPS)


async def _one_reminder(path: str, platform: Platform, world: World) -> str:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1), name=NAME)
    await world.bot.bind("u1", account)
    return seal


async def test_43101_on_the_subscription_goes_on_with_the_template_message(
    platform: Platform,
    clock: ManualClock,
    tmp_path: Path,
    recorder: tuple[FakeWeChat, str],
    smtp: tuple[SmtpSink, int],
) -> None:
    async with world_for("subscribe", platform, clock, tmp_path, recorder, smtp[1]) as world:
        assert world.wechat is not None
        world.wechat.settings.template_id = TEMPLATE_TPL
        await _one_reminder("subscribe", platform, world)
        await world.wechat.consents.record("u1", SUBSCRIBE_TPL, "accept", clock.now())
        recorder[0].fail_next("message/subscribe/bizsend", 43101)
        await world.bot.run()
        [delivery] = await world.bot.deliveries.recent()
        assert len(recorder[0].calls_to("message/template/send")) == 1
        assert (delivery.status, delivery.route) == (Status.SENT, "notice")


@pytest.mark.parametrize(
    ("errcode", "status", "reason"),
    [
        (40037, Status.UNDELIVERABLE, "chat: wechat 模板消息: the template id is not valid (40037)"),
        (47003, Status.UNDELIVERABLE, "chat: wechat 模板消息: a field broke WeChat's rules (47003)"),
        (45009, Status.DEFERRED, "chat: wechat 模板消息: daily quota reached (45009)"),
    ],
)
async def test_wechat_refusals_are_recorded_with_the_reason_and_the_next_channels_tried(
    errcode: int,
    status: str,
    reason: str,
    platform: Platform,
    clock: ManualClock,
    tmp_path: Path,
    recorder: tuple[FakeWeChat, str],
    smtp: tuple[SmtpSink, int],
) -> None:
    async with world_for("template", platform, clock, tmp_path, recorder, smtp[1]) as world:
        await _one_reminder("template", platform, world)
        recorder[0].fail_next("message/template/send", errcode)
        await world.bot.run()
        [delivery] = await world.bot.deliveries.recent()
        assert delivery.status == status
        assert (
            delivery.reason == f"{reason}; sms: no SMS sender configured; email: no e-mail sender configured"
        )
        if status == Status.DEFERRED:
            # WeChat's daily quota renews at midnight, Beijing time (16:00 UTC).
            assert delivery.next_attempt_at.astimezone(UTC).hour == 16
            clock.at = delivery.next_attempt_at + timedelta(hours=9)  # 09:00: after quiet hours
            await world.bot.run()
            [delivery] = await world.bot.deliveries.recent()
            assert delivery.status == Status.SENT
        assert len(recorder[0].calls_to("message/template/send")) == (2 if status == Status.DEFERRED else 1)


async def test_a_seal_that_appears_is_planned_on_the_next_pass_not_the_next_sweep(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await bot.bind("u1", account)
    await bot.run()  # the first (full) pass: nothing yet
    bot.chat.clock.advance(timedelta(minutes=1))
    await platform.add_seal(account, expires_in=20 * DAY)  # imported: its 30-day reminder is overdue
    await bot.run()
    [delivery] = await bot.deliveries.recent()
    assert (delivery.threshold, delivery.status) == (30, Status.SENT)
    assert len(bot.reminders_to("u1")) == 1


async def test_the_user_sees_and_changes_the_reminder_channels_in_the_chat(
    platform: Platform,
    clock: ManualClock,
    tmp_path: Path,
    recorder: tuple[FakeWeChat, str],
    smtp: tuple[SmtpSink, int],
) -> None:
    async with world_for("sms", platform, clock, tmp_path, recorder, smtp[1]) as world:
        bot = world.bot
        account = await platform.add_account()
        await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1), name=NAME)
        await bot.bind("u1", account)
        [ask] = await bot.chat.say("提醒方式")
        assert ask == "目前的提醒方式：聊天、短信、邮件。您希望通过哪些方式接收到期提醒？"
        assert (await bot.chat.say("仅短信"))[0] == "已保存。到期提醒将通过：短信。"
        await bot.run()
        # The chat would reach them, but they chose SMS only.
        assert bot.reminders_to("u1") == []
        assert len(reminder_sms(world)) == 1
        [delivery] = await bot.deliveries.recent()
        assert (delivery.status, delivery.channel) == (Status.SENT, "sms")


def test_keyword_values_keep_to_wechats_rules() -> None:
    long_name = "内蒙古自治区呼和浩特市新城区某某某某科技发展有限责任公司"  # 28 characters
    notice = ReminderNotice(
        seal_id="s1",
        seal_name=long_name,
        seal_kind="enterprise",
        threshold=7,
        valid_to="2027-01-08",
        days_left=7,
        locale="zh-CN",
        title="电子印章到期提醒",
        text="",
        action_label="点击续期",
        start_payload="renew-s1",
        kind_label="企业印章",
    )
    assert field_value("thing1", "seal", notice) == long_name[:19] + "…"
    assert len(field_value("thing1", "seal", notice)) == 20
    assert field_value("time2", "expiry", notice) == "2027年1月8日"
    assert field_value("date3", "expiry", notice) == "2027年1月8日"
    assert field_value("phrase4", "days_left", notice) == "即将到期"
    assert field_value("phrase4", "action", notice) == "点击续期"
    assert field_value("thing5", "days_left", notice) == "剩余7天"
    assert field_value("number6", "days_left", notice) == "7"
    assert field_value("character_string7", "seal", notice) == "-"


async def test_reminder_email_goes_only_to_the_accounts_own_address_about_its_own_seal(
    platform: Platform, smtp: tuple[SmtpSink, int]
) -> None:
    sink = smtp[0]
    without, with_address = await platform.add_account(), await platform.add_account()
    own_seal, other_seal = await platform.add_seals(
        [SealPlan(with_address, 7 * DAY, name=NAME), SealPlan(without, 7 * DAY, name="无邮箱有限公司")]
    )
    mail = PlatformReminderMail(platform.reminders)
    with pytest.raises(DeliveryFailed) as no_address:
        await mail.send(without, other_seal, "主题", "正文")
    assert (no_address.value.reason, no_address.value.retryable) == (
        "the account has no e-mail address",
        False,
    )
    await platform.request_invoice(with_address, "owner@changfeng.example")
    with pytest.raises(DeliveryFailed) as not_its_seal:
        await mail.send(with_address, other_seal, "主题", "正文")
    assert not_its_seal.value.reason.startswith("e-mail refused (not_found)")
    assert not_its_seal.value.retryable is False
    mailed = len(sink.mails)
    message_id = await mail.send(with_address, own_seal, "【电子印章】到期提醒", "您的印章即将到期。")
    [(envelope, message)] = sink.mails[mailed:]
    assert envelope.rcpt_tos == ["owner@changfeng.example"]
    assert message["Message-ID"] == message_id
    assert (
        str(email.header.make_header(email.header.decode_header(message["Subject"])))
        == "【电子印章】到期提醒"
    )
    assert message.get_payload(decode=True).decode("utf-8").strip() == "您的印章即将到期。"
