"""The scheduler's service calls: seals nearing expiry (paged), their current state, and the
unpaid-order sweep.

Mounted on ``PlatformClient`` as ``reminders = mount(RemindersAPI)``. Both calls use only the
service credential: they serve the platform's timed duties, not one applicant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from platform_client.base import SubAPI
from platform_client.errors import UnexpectedResponse
from platform_client.models import PlatformModel


class ExpiringSeal(PlatformModel):
    seal_id: str
    account_id: str
    kind: str  # "enterprise" | "personal"
    name: str  # the company name, or the legal representative's name
    status: str
    valid_to: datetime


class ExpiringSealsPage(PlatformModel):
    seals: tuple[ExpiringSeal, ...]
    next_after: str | None


class SealState(PlatformModel):
    seal_id: str
    status: str
    valid_to: datetime | None


class ReminderSmsReceipt(PlatformModel):
    message_id: str
    phone_masked: str


class ReminderEmailReceipt(PlatformModel):
    message_id: str
    email_masked: str


class AccountContact(PlatformModel):
    phone: str
    phone_masked: str


class ReconcileReport(PlatformModel):
    paid: tuple[str, ...]
    expired: tuple[str, ...]
    failed: tuple[str, ...]


class RetentionReport(PlatformModel):
    scans: int
    sms_codes: int
    logins: int

    @property
    def total(self) -> int:
        return self.scans + self.sms_codes + self.logins


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("aware datetimes only: the platform compares in UTC")
    return value.isoformat()


class RemindersAPI(SubAPI):
    async def expiring_seals(
        self,
        *,
        until: datetime,
        since: datetime,
        after: str | None = None,
        limit: int = 500,
        changed_since: datetime | None = None,
    ) -> ExpiringSealsPage:
        """Live seals with ``since < valid_to <= until`` (and, with ``changed_since``, changed
        after it), ordered by (valid_to, id); continue with ``after=page.next_after`` until it
        is None."""
        params: dict[str, str | int | None] = {
            "until": _iso(until),
            "since": _iso(since),
            "after": after,
            "limit": limit,
        }
        if changed_since is not None:
            params["changed_since"] = _iso(changed_since)
        data = await self._request("GET", "/v1/service/expiring-seals", params=params)
        return self._parse(ExpiringSealsPage, data)

    async def iter_expiring_seals(
        self,
        *,
        until: datetime,
        since: datetime,
        page_size: int = 500,
        changed_since: datetime | None = None,
    ) -> AsyncIterator[ExpiringSeal]:
        after: str | None = None
        while True:
            page = await self.expiring_seals(
                until=until, since=since, after=after, limit=page_size, changed_since=changed_since
            )
            for seal in page.seals:
                yield seal
            if page.next_after is None:
                return
            after = page.next_after

    async def seal_states(self, seal_ids: Sequence[str]) -> dict[str, SealState]:
        """Current status and validity by seal id; unknown ids are absent. (POST because the id
        list may be long; it changes nothing.)"""
        states: dict[str, SealState] = {}
        unique = sorted(set(seal_ids))
        for start in range(0, len(unique), 1000):
            data = await self._request(
                "POST",
                "/v1/service/seal-states",
                json={"seal_ids": unique[start : start + 1000]},
            )
            if not isinstance(data, list):
                raise UnexpectedResponse("seal states answer is not a list")
            for item in data:
                state = self._parse(SealState, item)
                states[state.seal_id] = state
        return states

    async def reconcile_payments(self) -> ReconcileReport:
        """Settle orders past their payment deadline (paid at the provider, or expired)."""
        data = await self._request("POST", "/v1/service/reconcile-payments")
        return self._parse(ReconcileReport, data)

    async def apply_retention(self) -> RetentionReport:
        """Delete what the platform keeps past its retention periods (scans of ended orders,
        SMS code and login records); the counts of this run."""
        return self._parse(RetentionReport, await self._request("POST", "/v1/service/retention"))

    async def send_reminder_sms(self, account_id: str, seal_id: str, threshold: int) -> ReminderSmsReceipt:
        """Text the expiry reminder of a seal to its account's own phone (the platform writes
        the text from its records)."""
        data = await self._request(
            "POST",
            "/v1/service/reminder-sms",
            json={"account_id": account_id, "seal_id": seal_id, "threshold": threshold},
        )
        return self._parse(ReminderSmsReceipt, data)

    async def send_reminder_email(
        self, account_id: str, seal_id: str, subject: str, text: str
    ) -> ReminderEmailReceipt:
        """Mail the expiry reminder of a seal to its account's own address (the platform
        chooses the address and checks the seal)."""
        data = await self._request(
            "POST",
            "/v1/service/reminder-email",
            json={"account_id": account_id, "seal_id": seal_id, "subject": subject, "text": text},
        )
        return self._parse(ReminderEmailReceipt, data)

    async def contact(self, account_id: str) -> AccountContact:
        """The account's phone (for reminders and staff follow-up)."""
        data = await self._request("GET", f"/v1/service/accounts/{account_id}/contact")
        return self._parse(AccountContact, data)
