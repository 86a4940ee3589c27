"""Seals for the scheduler tests, made only the way the product makes them.

A seal is applied for with its documents, paid on the sandbox page, approved and produced by
staff at the production station (on simulated blank keys kept in a drawer, so that the user's
bridge finds the same key again for a renewal), and shipped. A renewal is a real renewal order
whose UKey step the bridge's own job runner carries out on that key; a cancellation is a real
cancellation order confirmed with the SMS code. Expiry is never written: the one shared clock
is moved until the seal is where a test wants it (``SealMaker.make``)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.bridge.adapters import PlatformCertificateIssuer
from bot.engine.state import Session
from bot.testing import ManualClock
from platform_client.client import PlatformClient
from seal_platform.production.station import RunnerStation
from seal_platform.services import PlatformServices
from seal_platform.validation import credit_code_check_char
from tests.fixtures.seals import SealOrder, produced_seal
from tests.fixtures.staff import add_staff
from tests.ukey_bridge.support import ScriptedPrompt
from ukey_bridge.backend import TokenBackend
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import IssuedCertificate, Job, JobRunner
from ukey_bridge.protocol import JobType, Stage

PASSWORD = "Remind2026ok"
HOLDER = "李四"
HOLDER_ID = "11010519491231002X"
INITIAL_PIN = "12345678"
STAFF = ("scheduler-staff", "scheduler-staff-pass-1")
_codes = itertools.count(1)


def _uscc() -> str:
    first17 = f"91110000{next(_codes):09d}"
    return first17 + credit_code_check_char(first17)


@dataclass(frozen=True)
class SealPlan:
    """A seal a test wants: whose, what it is called, and how long it has left once made."""

    account_id: str
    expires_in: timedelta
    name: str = "示例科技有限公司"
    kind: str = "enterprise"
    cancelled: bool = False


@dataclass
class KeyDrawer:
    """The station's blank keys. A written key stays in the drawer: it is the key the user
    later holds, so the bridge's renewal job runs on the very key production wrote."""

    keys: dict[str, FakeBackend] = field(default_factory=dict)

    def blank(self) -> TokenBackend:
        serial = f"SCHED{len(self.keys) + 1:011d}"
        backend = FakeBackend([FakeToken(serial=serial, label="", user_pin="", so_pin="", initialised=False)])
        self.keys[serial] = backend
        return backend


@dataclass
class _BridgeLink:
    """The bridge's view of the service for one renewal job: certificates come from the
    platform through the bot's own issuer (the one the bridge hub uses)."""

    issuer: PlatformCertificateIssuer
    account_id: str
    order_id: str

    async def progress(self, job_id: str, stage: Stage, detail: dict[str, Any] | None = None) -> None:
        return None

    async def request_certificate(self, job_id: str, csr_der: bytes) -> IssuedCertificate:
        issued = await self.issuer.issue(self.account_id, self.order_id, csr_der)
        return IssuedCertificate(issued.cert_der, issued.seseal_der, issued.chain_pem)


@dataclass
class _Tokens:
    sessions: dict[str, Session]

    async def token_for(self, account_id: str, order_id: str) -> str:
        return self.sessions[account_id].token


class SealMaker:
    """Applies for, produces, renews and cancels seals through the platform's API."""

    def __init__(
        self,
        services: PlatformServices,
        api: httpx.AsyncClient,
        client: PlatformClient,
        clock: ManualClock,
        sessions: dict[str, Session],
    ) -> None:
        self.services = services
        self.api = api
        self.client = client
        self.clock = clock
        self.sessions = sessions
        self.drawer = KeyDrawer()
        services.production_station = RunnerStation(self.drawer.blank)
        self._staff_made = False

    # ---- sessions ----------------------------------------------------------------------------

    async def log_in(self, account_id: str) -> str:
        """A fresh session for the account (an older one may have ended as the clock moved)."""
        phone = self.sessions[account_id].phone
        assert phone is not None
        answer = await self.api.post("/v1/sessions", json={"phone": phone, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        token = str(answer.json()["token"])
        self.sessions[account_id] = Session(account_id=account_id, token=token, phone=phone)
        return token

    async def _staff(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self._staff_made:
            await add_staff(self.services, STAFF[0], ["admin"], password=STAFF[1])
            self._staff_made = True
        login = await self.api.post("/v1/staff/sessions", json={"username": STAFF[0], "password": STAFF[1]})
        assert login.status_code == 201, login.text
        answer = await self.api.post(
            f"/v1/staff{path}", json=body or {}, headers={"X-Staff-Token": login.json()["token"]}
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def _pay(self, token: str, order_id: str) -> None:
        payment = await self.client.orders.start_payment(token, order_id)
        pressed = await self.api.post(f"/pay/{payment.id}")
        assert pressed.status_code == 303, pressed.text

    async def _order(self, token: str, body: dict[str, Any]) -> str:
        created = await self.api.post("/v1/orders", json=body, headers={"X-Account-Token": token})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    async def _seal(self, token: str, seal_id: str) -> dict[str, Any]:
        answer = await self.api.get(f"/v1/seals/{seal_id}", headers={"X-Account-Token": token})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    # ---- a new seal ----------------------------------------------------------------------------

    async def produce(self, plan: SealPlan, years: int) -> tuple[str, datetime]:
        """Apply, pay, approve, produce at the station and ship, now; the seal id and its end."""
        token = await self.log_in(plan.account_id)
        if plan.kind == "personal":
            company = {"name": "个人印章申请有限公司", "legal_rep_name": plan.name}
        else:
            company = {"name": plan.name, "legal_rep_name": HOLDER}
        seal = await produced_seal(
            self.api,
            {"X-Account-Token": token},
            self._staff,
            SealOrder(
                kind="personal" if plan.kind == "personal" else "enterprise",
                company={**company, "uscc": _uscc(), "legal_rep_id": HOLDER_ID},
                years=years,
            ),
        )
        return str(seal["id"]), datetime.fromisoformat(str(seal["valid_to"]))

    async def make(self, plans: Sequence[SealPlan]) -> list[str]:
        """Produce every planned seal and leave the clock where each has ``expires_in`` left.

        A new seal runs whole years from its production, so each is produced that long before
        the moment it should have ``expires_in`` left, in production order, and the clock then
        moves on to that moment: whole days from now, so the time of day a test starts at is
        kept (10:00 in Shanghai)."""
        start = self.clock.now()
        years = [1 if p.expires_in < timedelta(days=360) else 2 for p in plans]

        def produced_at(target: datetime, n: int) -> datetime:
            return target.replace(year=target.year - n)

        def too_early(days: int) -> bool:
            moment = start + timedelta(days=days)
            return any(
                produced_at(moment + p.expires_in, n) < start for p, n in zip(plans, years, strict=True)
            )

        days = 0
        while too_early(days):
            days += 1
        moment = start + timedelta(days=days)
        order = sorted(range(len(plans)), key=lambda i: produced_at(moment + plans[i].expires_in, years[i]))
        made: dict[int, str] = {}
        for i in order:
            self.clock.advance(produced_at(moment + plans[i].expires_in, years[i]) - self.clock.now())
            seal_id, valid_to = await self.produce(plans[i], years[i])
            assert valid_to == moment + plans[i].expires_in, (valid_to, moment, plans[i])
            made[i] = seal_id
        self.clock.advance(moment - self.clock.now())
        for account_id in {p.account_id for p in plans}:
            await self.log_in(account_id)
        for i, plan in enumerate(plans):
            if plan.cancelled:
                await self.cancel(plan.account_id, made[i])
        return [made[i] for i in range(len(plans))]

    async def request_invoice(self, account_id: str, email: str) -> None:
        """Ask for the e-invoice of the account's paid orders, giving ``email`` for it."""
        token = await self.log_in(account_id)
        orders = await self.api.get("/v1/orders", headers={"X-Account-Token": token})
        assert orders.status_code == 200, orders.text
        paid = [o for o in orders.json() if o["status"] in ("shipped", "completed")]
        assert paid, orders.json()
        for order in paid:
            asked = await self.api.post(
                f"/v1/orders/{order['id']}/invoice",
                json={"title": "个人", "email": email},
                headers={"X-Account-Token": token},
            )
            assert asked.status_code == 201, asked.text

    # ---- renewal and cancellation -------------------------------------------------------------

    async def renew(self, account_id: str, seal_id: str, *, years: int = 1) -> None:
        """A renewal order, paid, whose UKey step the bridge's job runner does on the seal's key."""
        token = await self.log_in(account_id)
        order_id = await self._order(token, {"type": "renewal", "seal_id": seal_id, "years": years})
        submitted = await self.api.post(f"/v1/orders/{order_id}/submit", headers={"X-Account-Token": token})
        assert submitted.status_code == 200, submitted.text
        await self._pay(token, order_id)
        seal = await self._seal(token, seal_id)
        key = self.drawer.keys[str(seal["key_serial"])]
        runner = JobRunner(lambda: key, ScriptedPrompt(pins=[INITIAL_PIN]))
        issuer = PlatformCertificateIssuer(self.client, _Tokens(self.sessions))
        report = await runner.run(
            Job(f"renew-{order_id}", JobType.RENEWAL, {"key_serial": seal["key_serial"]}),
            _BridgeLink(issuer, account_id, order_id),
        )
        assert report.succeeded, report
        completed = await self.client.orders.complete_ukey_job(
            token, order_id, key_serial=str(seal["key_serial"])
        )
        assert completed.status == "completed", completed

    async def cancel(self, account_id: str, seal_id: str) -> None:
        """A cancellation order confirmed with the code texted to the account's phone."""
        token = await self.log_in(account_id)
        phone = self.sessions[account_id].phone
        order_id = await self._order(token, {"type": "cancellation", "seal_id": seal_id})
        sent = await self.api.post(
            "/v1/sms-codes",
            json={"phone": phone, "purpose": "cancel_seal"},
            headers={"X-Account-Token": token},
        )
        assert sent.status_code == 201, sent.text
        code = self.services.sms_provider.last_code(str(phone), "cancel_seal")
        confirmed = await self.api.post(
            f"/v1/orders/{order_id}/confirm-cancellation",
            json={"sms_code": code},
            headers={"X-Account-Token": token},
        )
        assert confirmed.status_code == 200, confirmed.text
        assert (await self._seal(token, seal_id))["status"] == "cancelled"
