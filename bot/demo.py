"""``sealbot demo``: a demo account with a seal on a SoftHSM2 token that expires in 30 days, a
paid order in review and an issued invoice, all made through the platform's own API.

Nothing is written into a table: the seal's history is played through the platform with its
clock set back (the order, payment, review, production on a blank SoftHSM2 token at the
station, shipping and the invoice happened "335 days ago"), so the one-year seal is now inside
the 60-day renewal window; then the clock is today's again for the order still in review.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx
from PIL import Image

from bot.settings import Settings

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
HISTORY_AGO = timedelta(days=335)
DEMO_COMPANY = {
    "name": "北京演示科技有限公司",
    "uscc": "91110000600037341L",
    "legal_rep_name": "李四",
    "legal_rep_id": "11010519491231002X",
}
DEMO_ADDRESS = {
    "recipient": "王五",
    "phone": "13800138000",
    "province": "北京市",
    "city": "北京市",
    "district": "海淀区",
    "address": "中关村大街 1 号",
}


class DemoError(RuntimeError):
    """The demo could not be made (a tool missing, a step refused); the message says which."""


class ShiftedClock:
    """The platform's clock for the demo: ``offset`` from now, changed as the story moves on."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass(frozen=True)
class DemoAccount:
    phone: str
    password: str
    staff_username: str
    staff_password: str
    seal_id: str
    key_serial: str
    valid_to: str
    softhsm_conf: Path


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def _softhsm(directory: Path) -> Path:
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        raise DemoError("SoftHSM2 is needed for the demo's UKey: run scripts/system-deps.sh")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    # SoftHSM2 reads this when the station loads the module; the user's bridge needs it too
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


class _Platform:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.client.request(method, path, **kwargs)
        if response.status_code != expect:
            raise DemoError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
        return (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )


async def create_demo(settings: Settings, out: TextIO) -> DemoAccount:
    from bot.app import embedded_platform_services
    from seal_platform.app import create_platform_app
    from seal_platform.console.bootstrap import create_staff_user
    from seal_platform.production.station import RunnerStation
    from ukey_bridge.pkcs11_backend import Pkcs11Backend, Pkcs11Config

    conf = _softhsm(Path(settings.data_dir) / "demo-softhsm")
    clock = ShiftedClock(-HISTORY_AGO)
    services = await embedded_platform_services(settings, clock)
    config = Pkcs11Config(SOFTHSM_MODULE)
    services.production_station = RunnerStation(lambda: Pkcs11Backend(config))
    staff_username = f"demo-staff-{secrets.token_hex(3)}"
    staff_password = secrets.token_urlsafe(12)
    await create_staff_user(services, staff_username, staff_password, ["admin"])
    service_key = settings.platform_service_key.get_secret_value()
    transport = httpx.ASGITransport(app=create_platform_app(services))
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://platform",
            headers={"Authorization": f"Bearer {service_key}"},
        ) as client:
            return await _story(_Platform(client), services, clock, conf, staff_username, staff_password, out)
    finally:
        await services.aclose()


async def _story(
    api: _Platform,
    services: PlatformServices,
    clock: ShiftedClock,
    conf: Path,
    staff_username: str,
    staff_password: str,
    out: TextIO,
) -> DemoAccount:
    phone = "139" + "".join(secrets.choice("0123456789") for _ in range(8))
    password = "demo-" + secrets.token_hex(4)
    await api.call("POST", "/v1/sms-codes", json={"phone": phone, "purpose": "register"}, expect=201)
    from seal_platform.sms import ConsoleSmsProvider

    sms_provider = services.sms_provider
    if not isinstance(sms_provider, ConsoleSmsProvider):
        raise DemoError("the demo reads its SMS codes from the console SMS provider")
    code = sms_provider.last_code(phone, "register")
    registered = await api.call(
        "POST", "/v1/accounts", json={"phone": phone, "sms_code": code, "password": password}, expect=201
    )
    user = {"X-Account-Token": registered["session"]["token"]}
    await api.call(
        "POST",
        "/v1/me/realname",
        json={"name": "李四", "id_number": DEMO_COMPANY["legal_rep_id"]},
        headers=user,
    )
    staff_login = await api.call(
        "POST",
        "/v1/staff/sessions",
        json={"username": staff_username, "password": staff_password},
        expect=201,
    )
    staff = {"X-Staff-Token": staff_login["token"]}

    async def upload(kind: str) -> str:
        files = {"file": ("scan.png", _png(), "image/png")}
        document = await api.call(
            "POST", "/v1/documents", data={"kind": kind}, files=files, headers=user, expect=201
        )
        return str(document["id"])

    async def paid_order(body: dict[str, Any]) -> str:
        order = await api.call("POST", "/v1/orders", json=body, headers=user, expect=201)
        await api.call("POST", f"/v1/orders/{order['id']}/submit", headers=user)
        payment = await api.call(
            "POST", f"/v1/orders/{order['id']}/payments", json={"channel": "native"}, headers=user, expect=201
        )
        response = await api.client.post(f"/pay/{payment['id']}")  # the sandbox page's "pay"
        if response.status_code != 303:
            raise DemoError(f"the sandbox payment answered {response.status_code}")
        return str(order["id"])

    print("demo: applying for the enterprise seal (335 days ago)", file=out)
    documents = {
        "business_licence": await upload("business_licence"),
        "impression_form_enterprise": await upload("impression_form"),
    }
    first = await paid_order(
        {
            "type": "enterprise_seal",
            "company": DEMO_COMPANY,
            "years": 1,
            "mailing_address": DEMO_ADDRESS,
            "documents": documents,
        }
    )
    for step, body in (
        ("approve", None),
        ("produce", None),
        ("ship", {"waybill": "SF1234567890123"}),
        ("complete", None),
    ):
        print(f"demo: staff {step}", file=out)
        await api.call("POST", f"/v1/staff/orders/{first}/{step}", json=body or {}, headers=staff)
    invoice = await api.call(
        "POST",
        f"/v1/orders/{first}/invoice",
        json={"title": DEMO_COMPANY["name"], "tax_number": DEMO_COMPANY["uscc"], "email": "demo@example.com"},
        headers=user,
        expect=201,
    )
    await api.call("POST", f"/v1/staff/invoices/{invoice['id']}/issue", headers=staff)

    clock.offset = timedelta(0)  # today: the seal expires in about 30 days
    # the applicant logs in again today (the session of 335 days ago has long ended)
    session = await api.call("POST", "/v1/sessions", json={"phone": phone, "password": password}, expect=201)
    user["X-Account-Token"] = session["token"]
    print("demo: a personal seal order, paid today, waiting for review", file=out)
    personal = {
        "id_card_front": await upload("id_card_front"),
        "id_card_back": await upload("id_card_back"),
        "impression_form_personal": await upload("impression_form"),
    }
    in_review = await paid_order(
        {
            "type": "personal_seal",
            "company": DEMO_COMPANY,
            "years": 1,
            "mailing_address": DEMO_ADDRESS,
            "documents": personal,
        }
    )
    waiting = await api.call("GET", f"/v1/orders/{in_review}", headers=user)
    if waiting["status"] != "under_review":
        raise DemoError(f"the personal seal order is {waiting['status']}, not in review")
    (seal,) = await api.call("GET", "/v1/seals", headers=user)
    return DemoAccount(
        phone,
        password,
        staff_username,
        staff_password,
        str(seal["id"]),
        str(seal["key_serial"]),
        str(seal["valid_to"]),
        conf,
    )


def print_demo(settings: Settings, demo: DemoAccount, out: TextIO) -> None:
    base = settings.public_base_url
    print("", file=out)
    print(f"演示账号 / demo account: {demo.phone}  密码 / password: {demo.password}", file=out)
    print(
        f"  网页聊天 / web chat: {base}/chat  （发送“登录”，用手机号和密码登录 / say 登录 and log in）",
        file=out,
    )
    print(
        f"  印章 / seal: {demo.seal_id}  UKey 序列号 / serial: {demo.key_serial}  有效期至 / valid to: {demo.valid_to}",
        file=out,
    )
    print(
        f"员工控制台 / staff console: {base}/platform/console  {demo.staff_username} / {demo.staff_password}",
        file=out,
    )
    print("UKey（SoftHSM2）在这台电脑上 / the UKey is a SoftHSM2 token on this PC:", file=out)
    print(f"  export SOFTHSM2_CONF={demo.softhsm_conf}", file=out)
    print(f"  ukey-bridge run --module {SOFTHSM_MODULE}   （UKey 密码 / PIN: 12345678）", file=out)


def softhsm_slots(conf: Path) -> str:
    """What SoftHSM2 lists in the demo's token directory (for the operator and the tests)."""
    util = shutil.which("softhsm2-util")
    if util is None:
        raise DemoError("softhsm2-util is not installed")
    shown = subprocess.run(  # noqa: S603 - fixed tool, no outside input
        [util, "--show-slots"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout
