"""In the embedded default the platform is mounted in the bot, whose start-up hook is the bot's:
the platform's own outbox sweep never runs there. The bot's scheduler carries the sweep instead
(``platform_mail`` duty, every minute), so an invoice mail refused by a down SMTP server goes out
once the server is back, without waiting for another mail or an in-process timer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core import PLATFORM_MAIL_SWEEP_SECONDS, platform_mail_duty
from scheduler.jobs import DutyRunner
from seal_platform.mail_outbox import MailOutboxRow, MailStatus, retry_delay
from tests.conversations.conftest import Service
from tests.conversations.test_apply_enterprise import COMPANY, USCC, joined, staff_desk
from tests.conversations.test_invoice import _service, paid
from tests.fakes.smtp import smtp_server


@pytest.fixture
async def service_with_smtp_down(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Service]:
    """The whole service, its platform set to mail through an SMTP server that is down."""
    async with smtp_server() as gone:
        closed_port = gone.port
    monkeypatch.setenv("PLATFORM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PLATFORM_SMTP_PORT", str(closed_port))
    monkeypatch.setenv("PLATFORM_SMTP_SECURITY", "none")
    monkeypatch.setenv("PLATFORM_SMTP_FROM", "invoice@seal.example.cn")
    built = await _service(tmp_path)
    yield built
    await built.container.stop()


async def _outbox(service: Service) -> list[MailOutboxRow]:
    async with service.container.platform_services.db.session() as session:
        return list(await session.scalars(select(MailOutboxRow).order_by(MailOutboxRow.id)))


async def test_the_bot_scheduler_sweeps_the_embedded_platform_outbox_once_smtp_is_back(
    service_with_smtp_down: Service,
) -> None:
    service = service_with_smtp_down
    container = service.container
    job = container.scheduler.get_job("platform_mail")
    assert job is not None, "the embedded platform's outbox is swept by the bot's scheduler"
    assert job.trigger.interval == timedelta(seconds=PLATFORM_MAIL_SWEEP_SECONDS)

    await paid(service)
    chat = service.chat
    await chat.say("开发票")
    await chat.tap("企业公章")
    await chat.say(COMPANY)
    await chat.say(USCC)
    await chat.say("finance@example.com")
    assert "发票申请已提交" in joined(await chat.tap("确认无误"))
    desk = await staff_desk(service)
    (invoice,) = await desk.api.invoices(desk.token, status="requested")
    await desk.issue_invoice(invoice.id)
    await service.settle()
    [row] = await _outbox(service)
    assert (row.status, row.attempts, row.last_error) == (MailStatus.PENDING, 1, "SMTPConnectError")

    duty = platform_mail_duty(container)
    runner = DutyRunner(container.metrics)
    async with smtp_server() as mailbox:
        settings = container.platform_services.settings
        settings.smtp_port = mailbox.port  # the operator's SMTP server is reachable again
        assert await runner.run(duty.name, duty.run) == 0.0  # not due before its retry delay
        service.clock.advance(retry_delay(1) + timedelta(seconds=1))
        assert await runner.run(duty.name, duty.run) == 1.0
        [mail] = mailbox.messages
    assert mail["To"] == "finance@example.com"
    assert [part.get_content_type() for part in mail.iter_attachments()] == ["application/pdf"]
    [row] = await _outbox(service)
    assert (row.status, row.attempts) == (MailStatus.SENT, 2)
    assert container.metrics.job("platform_mail").last_result == 1.0
