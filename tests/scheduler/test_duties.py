"""The other timed duties, their wiring on APScheduler, the preview and the staff page."""

from __future__ import annotations

import argparse
import asyncio
import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from bot.engine.state import PAUSED
from bot.engine.tables import inbound_receipts
from scheduler.cli import add_scheduler_commands, reminders_run_now_command, write_preview, write_run_report
from scheduler.console import reminders_console_router
from scheduler.deliveries import Status
from scheduler.housekeeping import pause_stale_conversations, purge_dedupe_records
from scheduler.jobs import DutyRunner, TimedDuty, build_scheduler, service_duties
from scheduler.metrics import MetricsRegistry
from scheduler.preview import preview_reminders
from tests.scheduler.conftest import Bot, Platform, scheduler_settings
from tests.scheduler.seals import SealPlan

DAY = timedelta(days=1)


async def test_a_stale_flow_is_put_aside_with_its_answers_and_can_be_resumed(bot: Bot) -> None:
    await bot.chat.say("提醒设置")  # a flow that now waits for the user's choice
    key = bot.chat.key("u1")
    db = bot.deliveries.engine
    assert await pause_stale_conversations(bot.chat.engine, db, bot.chat.clock.now(), idle=DAY) == 0
    bot.chat.clock.advance(DAY + timedelta(minutes=1))
    assert await pause_stale_conversations(bot.chat.engine, db, bot.chat.clock.now(), idle=DAY) == 1
    row = await bot.chat.store.get(key)
    assert row is not None
    assert row.flow is None
    assert "reminders" in row.state["memory"][PAUSED]
    replies = await bot.chat.say("hello")
    assert any(o.token == "@resume" for o in bot.chat.options())
    assert replies


async def test_old_dedupe_records_are_purged_and_recent_ones_kept(bot: Bot) -> None:
    await bot.chat.say("你好")
    bot.chat.clock.advance(31 * DAY)
    await bot.chat.say("你好")
    db = bot.deliveries.engine
    assert await purge_dedupe_records(db, bot.chat.clock.now(), older_than=30 * DAY) == 1
    async with db.connect() as conn:
        left = (await conn.execute(inbound_receipts.select())).all()
    assert len(left) == 1


async def test_each_duty_run_is_counted_and_a_failure_does_not_stop_the_next() -> None:
    metrics = MetricsRegistry()
    runner = DutyRunner(metrics)
    calls = 0

    async def flaky() -> float:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return 3.0

    assert await runner.run("flaky", flaky) is None
    assert await runner.run("flaky", flaky) == 3.0
    snapshot = metrics.snapshot()
    assert snapshot['scheduler_job_runs_total{job="flaky"}'] == 2
    assert snapshot['scheduler_job_failures_total{job="flaky"}'] == 1
    assert snapshot['scheduler_job_last_result{job="flaky"}'] == 3.0


async def test_apscheduler_runs_every_duty_on_its_interval() -> None:
    metrics = MetricsRegistry()
    ran: list[str] = []

    def duty(name: str) -> TimedDuty:
        async def run() -> float:
            ran.append(name)
            return 1.0

        return TimedDuty(name, 0.05, run)

    scheduler = build_scheduler([duty("a"), duty("b")], metrics)
    scheduler.start()
    try:
        await asyncio.sleep(0.3)
    finally:
        scheduler.shutdown(wait=False)
    assert ran.count("a") >= 2
    assert ran.count("b") >= 2
    assert metrics.job("a").runs >= 2


async def test_the_service_duties_all_run_against_the_real_engine_and_platform(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1))
    await bot.bind("u1", account)
    duties = service_duties(
        settings=scheduler_settings(),
        engine=bot.chat.engine,
        db=bot.deliveries.engine,
        dispatcher=bot.chat.dispatcher,
        platform=platform.reminders,
        reminders=bot.job,
    )
    metrics = MetricsRegistry()
    runner = DutyRunner(metrics)
    for duty in duties:
        await runner.run(duty.name, duty.run)
    assert {d.name for d in duties} == {
        "reminders",
        "engine_timeouts",
        "outbox_retry",
        "payment_reconcile",
        "dedupe_purge",
        "stale_conversations",
    }
    assert all(metrics.job(d.name).failures == 0 for d in duties), metrics.snapshot()
    assert metrics.job("reminders").last_result >= 1
    assert len(bot.reminders_to("u1")) == 1  # the outbox duty delivered it


async def test_preview_lists_the_next_days_without_sending_or_claiming(platform: Platform, bot: Bot) -> None:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=33 * DAY, name="预览有限公司")
    await bot.bind("u1", account)
    lines = await preview_reminders(
        platform=platform.reminders,
        store=bot.chat.store,
        deliveries=bot.deliveries,
        settings=scheduler_settings(),
        now=bot.chat.clock.now(),
        days=10,
    )
    assert [(line.seal_id, line.threshold) for line in lines] == [(seal, 60), (seal, 30)]
    assert lines[1].send_at == bot.chat.clock.now() + 3 * DAY  # 10:00 local: inside the window
    assert lines[0].channel_key == "test:main:u1"
    assert await bot.deliveries.recent() == []
    assert bot.reminders_to("u1") == []
    out = io.StringIO()
    write_preview(lines, out, as_json=False, zone="Asia/Shanghai")
    assert "预览有限公司" in out.getvalue()
    assert "2 reminder(s); 2 would be sent" in out.getvalue()


async def test_the_staff_page_lists_upcoming_and_sent_reminders(platform: Platform, bot: Bot) -> None:
    account = await platform.add_account()
    await platform.add_seals(
        [
            SealPlan(account, 7 * DAY - timedelta(hours=1), name="已发送<公司>"),
            SealPlan(account, 40 * DAY, name="即将提醒公司"),
        ]
    )
    await bot.bind("u1", account)
    await bot.run()

    async def forecast(days: float) -> list:  # type: ignore[type-arg]
        return await preview_reminders(
            platform=platform.reminders,
            store=bot.chat.store,
            deliveries=bot.deliveries,
            settings=scheduler_settings(),
            now=bot.chat.clock.now(),
            days=days,
        )

    app = FastAPI()
    app.include_router(console_router(platform, bot, forecast))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as http:
        page = await http.get("/support/reminders", params={"days": 14})
    assert page.status_code == 200
    assert "即将提醒公司" in page.text  # its 30-day reminder is 10 days away
    assert "已发送&lt;公司&gt;" in page.text  # escaped
    assert "<td class=sent>已送达</td>" in page.text


@dataclass(frozen=True)
class _Staff:
    username: str = "alice"
    csrf: str = "csrf-token"

    def csrf_ok(self, given: str | None) -> bool:
        return given == self.csrf


def console_router(platform: Platform, bot: Bot, forecast: Any) -> APIRouter:
    async def phone_of(account_id: str) -> str:
        return (await platform.reminders.contact(account_id)).phone

    return reminders_console_router(
        bot.deliveries, forecast, staff=lambda: _Staff(), phone_of=phone_of, clock=bot.chat.clock
    )


async def test_an_unreachable_reminder_is_shown_to_staff_with_a_call_task(
    platform: Platform, bot: Bot
) -> None:
    account = await platform.add_account()
    await platform.add_seal(account, expires_in=7 * DAY - timedelta(hours=1), name="联系不上有限公司")
    await bot.run()  # no chat identity, no SMS, no e-mail: nobody could be reached
    [delivery] = await bot.deliveries.recent()
    assert delivery.status == Status.UNDELIVERABLE

    async def forecast(days: float) -> list:  # type: ignore[type-arg]
        return []

    app = FastAPI()
    app.include_router(console_router(platform, bot, forecast))
    phone = (await platform.reminders.contact(account)).phone
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as http:
        page = await http.get("/support/reminders")
        assert "联系不上有限公司" in page.text.split("即将发送")[0]  # in the unreachable section
        assert "电话/短信联系客户" in page.text
        refused = await http.post(f"/support/reminders/{delivery.id}/followup", data={"csrf": "wrong"})
        assert refused.status_code == 403
        opened = await http.post(f"/support/reminders/{delivery.id}/followup", data={"csrf": "csrf-token"})
        assert opened.status_code == 303
        page = await http.get("/support/reminders")
        assert f"待联系：{phone}（alice" in page.text
        await http.post(f"/support/reminders/{delivery.id}/followup/done", data={"csrf": "csrf-token"})
        page = await http.get("/support/reminders")
    assert "已联系（alice" in page.text
    row = await bot.deliveries.get(delivery.id)
    assert row is not None
    assert (row.status, row.followup, row.followup_by) == (Status.UNDELIVERABLE, "done", "alice")


async def test_run_now_prints_each_decision_and_channel(platform: Platform, bot: Bot) -> None:
    reached = await platform.add_account()
    lost = await platform.add_account()
    seal, lost_seal = await platform.add_seals(
        [
            SealPlan(reached, 7 * DAY - timedelta(hours=1), name="已送达公司"),
            SealPlan(lost, 30 * DAY - timedelta(hours=1), name="联系不上公司"),
        ]
    )
    await bot.bind("u1", reached)
    report = await bot.job.run_once(explain=True)
    await bot.chat.dispatcher.drain()
    synced = await bot.job.sync_outbox(bot.chat.clock.now())
    out = io.StringIO()
    write_run_report(report, synced, out)
    assert sorted(out.getvalue().splitlines()) == sorted(
        [
            f"已送达公司 ({seal}) 7: queued for {bot.chat.key('u1')}",
            f"联系不上公司 ({lost_seal}) 30: chat: no chat identity bound; next channel",
            f"联系不上公司 ({lost_seal}) 30: sms: no SMS sender configured; next channel",
            f"联系不上公司 ({lost_seal}) 30: email: no e-mail sender configured; next channel",
            f"联系不上公司 ({lost_seal}) 30: undeliverable: chat: no chat identity bound; "
            "sms: no SMS sender configured; email: no e-mail sender configured",
            "planned 2 (full pass); queued: 1, undeliverable: 1; outbox outcomes recorded: 1",
        ]
    )


def test_the_run_now_command_is_part_of_the_cli() -> None:
    parser = argparse.ArgumentParser()
    add_scheduler_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["reminders", "run-now"])
    assert args.handler is reminders_run_now_command
