"""The platform's service endpoints for the scheduler: paging, seal states, credentials."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from bot.errors import DeliveryFailed
from scheduler.sms import PlatformReminderMail
from tests.scheduler.conftest import SERVICE_KEY, Platform
from tests.scheduler.seals import SealPlan

DAY = timedelta(days=1)


async def test_expiring_seals_are_paged_in_expiry_order_without_gaps_or_cancelled_ones(
    platform: Platform,
) -> None:
    account = await platform.add_account()
    made = await platform.add_seals(
        [SealPlan(account, (d + 1) * DAY) for d in range(5)]
        + [SealPlan(account, 2 * DAY, cancelled=True), SealPlan(account, 400 * DAY)]  # 400: outside the range
    )
    wanted = made[:5]
    now = platform.services.clock.now()
    seen = [
        s.seal_id
        async for s in platform.reminders.iter_expiring_seals(
            since=now - DAY, until=now + 60 * DAY, page_size=2
        )
    ]
    assert seen == wanted


async def test_seal_states_report_renewals_and_cancellations(platform: Platform) -> None:
    account = await platform.add_account()
    renewed, cancelled = await platform.add_seals([SealPlan(account, 10 * DAY), SealPlan(account, 10 * DAY)])
    before = await platform.reminders.seal_states([renewed, cancelled, "no-such-seal"])
    await platform.renew(renewed)
    await platform.cancel(cancelled)
    after = await platform.reminders.seal_states([renewed, cancelled])
    assert set(before) == {renewed, cancelled}
    assert after[renewed].valid_to > before[renewed].valid_to  # type: ignore[operator]
    assert after[cancelled].status == "cancelled"


async def test_the_service_endpoints_need_the_service_credential(platform: Platform) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=platform.app), base_url="http://platform.test"
    ) as anonymous:
        listed = await anonymous.get(
            "/v1/service/expiring-seals", params={"until": "2027-01-01T00:00:00+00:00"}
        )
        swept = await anonymous.post("/v1/service/reconcile-payments")
    assert listed.status_code == 401
    assert swept.status_code == 401


async def test_a_malformed_cursor_is_refused(platform: Platform) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=platform.app),
        base_url="http://platform.test",
        headers={"Authorization": "Bearer scheduler-test-service-key"},
    ) as http:
        answer = await http.get(
            "/v1/service/expiring-seals", params={"until": "2027-01-01T00:00:00+00:00", "after": "garbage"}
        )
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_cursor"


async def test_reconcile_reports_nothing_when_no_order_is_overdue(platform: Platform) -> None:
    report = await platform.reminders.reconcile_payments()
    assert (report.paid, report.expired, report.failed) == ((), (), ())


async def test_without_smtp_settings_the_platform_refuses_reminder_email_and_the_job_moves_on(
    platform: Platform,
) -> None:
    account = await platform.add_account()
    seal = await platform.add_seal(account, expires_in=7 * DAY)
    with pytest.raises(DeliveryFailed) as refused:
        await PlatformReminderMail(platform.reminders).send(account, seal, "主题", "正文")
    assert (refused.value.reason, refused.value.retryable) == ("no e-mail sender configured", False)


async def test_the_contact_endpoint_gives_the_phone_and_never_the_e_mail_address(platform: Platform) -> None:
    # The e-mail address is read (and decrypted) only by the platform's own reminder e-mail.
    account = await platform.add_account()
    contact = await platform.reminders.contact(account)
    assert contact.phone.isdigit()
    assert contact.phone_masked != contact.phone
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=platform.app),
        base_url="http://platform.test",
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    ) as api:
        answer = await api.get(f"/v1/service/accounts/{account}/contact")
    assert set(answer.json()) == {"phone", "phone_masked"}
