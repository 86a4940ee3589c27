"""What the seal-process tests need around a chat: an applicant logged in from the chat, an
active seal made by the platform's own staff steps, payments through the sandbox page, and the
shared clock moved until a seal's expiry is where a test wants it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from seal_platform.production.station import RunnerStation
from seal_platform.staff import StaffRole
from tests.conversations.conftest import Service
from tests.fixtures.seals import approved_order, png_bytes, produced_seal
from tests.fixtures.staff import add_staff
from tests.password_page import use_page
from ukey_bridge.backend import TokenBackend

PASSWORD = "seal2024ok"
ID_NUMBER = "11010519491231002X"
STAFF_PASSWORD = "staff-password-1"


def joined(texts: list[str]) -> str:
    return "\n".join(texts)


@dataclass
class Applicant:
    user: str
    phone: str
    token: str
    account_id: str
    lang: str = "zh"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Account-Token": self.token}


class SealWorld:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.chat = service.chat
        container = service.container
        self.platform_services = container.platform_services
        self.api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=container.platform_app),
            base_url="http://platform.test",
            headers={"Authorization": f"Bearer {container.settings.platform_service_key.get_secret_value()}"},
        )
        self._staff: dict[str, str] | None = None
        self._staff_created = False

    async def close(self) -> None:
        await self.api.aclose()

    # ---- the applicant -------------------------------------------------------------------------

    async def applicant(self, *, user: str = "u1", phone: str = "13800138000", lang: str = "zh") -> Applicant:
        """Registered and real-name verified on the platform, then logged in from the chat."""
        platform = self.service.container.platform
        await platform.accounts.send_sms_code(phone, "register")
        registration = await platform.accounts.register(
            phone, self.service.sms_code(phone, "register"), PASSWORD
        )
        token = registration.session.token
        await platform.accounts.verify_realname(token, name="李四", id_number=ID_NUMBER)
        english = lang == "en"
        await self.chat.say("log in" if english else "登录", user=user, lang="en" if english else None)
        await self.chat.say(phone, user=user)
        await self.chat.tap("password" if english else "密码", user=user)
        pages = self.service.container.password_pages
        assert pages is not None
        view, answer = await use_page(pages, self.chat, PASSWORD, user=user, browser=f"browser-{user}")
        assert view.status == "done", view
        assert "138****" in joined(answer), answer
        row = await self.service.container.store.get(self.chat.key(user))
        assert row is not None
        assert row.platform_account_id is not None
        return Applicant(user, phone, token, row.platform_account_id, lang)

    async def advance(self, delta: timedelta, applicant: Applicant) -> Applicant:
        """Move the one shared clock; sessions that ended meanwhile are opened again, as the
        applicant (in the chat and on the platform) and staff would."""
        self.service.clock.advance(delta)
        self._staff = None
        english = applicant.lang == "en"
        said = joined(await self.chat.say("log in" if english else "登录", user=applicant.user))
        if ("mobile number" if english else "手机") in said:
            await self.chat.say(applicant.phone, user=applicant.user)
            await self.chat.tap("password" if english else "密码", user=applicant.user)
            # The password is typed on the secure page, never in the chat (privacy).
            assert self.service.container.password_pages is not None
            view, _ = await use_page(
                self.service.container.password_pages,
                self.chat,
                PASSWORD,
                user=applicant.user,
                browser=f"browser-{applicant.user}",
            )
            assert view.status == "done", view
        session = await self.service.container.platform.accounts.login_password(applicant.phone, PASSWORD)
        return Applicant(applicant.user, applicant.phone, session.token, applicant.account_id, applicant.lang)

    async def expiring_in(self, applicant: Applicant, seal: dict[str, Any], days: int) -> Applicant:
        """Move the shared clock until ``seal`` has ``days`` left (its expiry is never edited)."""
        valid_to = datetime.fromisoformat(str(seal["valid_to"]))
        return await self.advance(valid_to - self.now() - timedelta(days=days), applicant)

    # ---- staff and payments ---------------------------------------------------------------------

    async def staff(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.staff_call(path, body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def staff_call(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """A staff API call as staff would make it, answer unchecked (for refusals)."""
        if self._staff is None:
            if not self._staff_created:
                await add_staff(
                    self.platform_services, "seal-tests-admin", [StaffRole.ADMIN], password=STAFF_PASSWORD
                )
                self._staff_created = True
            login = await self.api.post(
                "/v1/staff/sessions", json={"username": "seal-tests-admin", "password": STAFF_PASSWORD}
            )
            assert login.status_code == 201, login.text
            self._staff = {"X-Staff-Token": login.json()["token"]}
        return await self.api.post(f"/v1/staff{path}", json=body or {}, headers=self._staff)

    async def pay(self, applicant: Applicant, order_id: str) -> None:
        """Press "pay" on the sandbox page of the order's payment, as the payer's browser would."""
        payment = await self.service.container.platform.orders.start_payment(applicant.token, order_id)
        pressed = await self.api.post(f"/pay/{payment.id}")
        assert pressed.status_code == 303, pressed.text

    async def upload(self, applicant: Applicant, kind: str) -> str:
        response = await self.api.post(
            "/v1/documents",
            data={"kind": kind},
            files={"file": ("scan.png", png_bytes(), "image/png")},
            headers=applicant.headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    # ---- seals -----------------------------------------------------------------------------------

    async def active_seal(self, applicant: Applicant) -> dict[str, Any]:
        """A company seal through the platform's own steps: order, pay, approve, produce, ship."""
        return await produced_seal(self.api, applicant.headers, self.staff)

    async def approved_order(self, applicant: Applicant) -> str:
        """A company seal order paid and approved: production is next."""
        return await approved_order(self.api, applicant.headers, self.staff)

    def install_station(self, backend: Callable[[], TokenBackend]) -> None:
        """Staff's production station writes new seals on the blank keys of ``backend``."""
        self.platform_services.production_station = RunnerStation(backend)

    async def seal(self, applicant: Applicant, seal_id: str) -> dict[str, Any]:
        return dict((await self.api.get(f"/v1/seals/{seal_id}", headers=applicant.headers)).json())

    async def order_of_seal(self, applicant: Applicant, seal_id: str, order_type: str) -> dict[str, Any]:
        orders = (await self.api.get("/v1/orders", headers=applicant.headers)).json()
        found = [o for o in orders if o["seal_id"] == seal_id and o["type"] == order_type]
        assert found, orders
        return dict(found[-1])

    def now(self) -> datetime:
        return self.service.clock.now()


def pairing_code(text: str) -> str:
    found = re.search(r"ukey-bridge pair ([0-9A-Z]{8})", text)
    assert found, text
    return found.group(1)
