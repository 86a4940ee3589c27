"""Production mode end to end, every provider real and pointed at a local fake: the service
starts with SEALBOT_PRODUCTION=true, a user registers in the chat with a code sent through the
Tencent Cloud SMS SDK, an order is paid through WeChat Pay v3 (signed notification), and the
invoice is issued through the Nuonuo adapter, e-mailed to a local SMTP server and delivered to
the chat."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from bot.app import build_container
from bot.engine.messages import ReplyKind
from bot.settings import Settings
from bot.testing import ChatHarness, ManualClock, RecordingSender
from seal_platform.payments.sandbox import transaction_resource
from seal_platform.staff import StaffRole
from tests.fakes import nuonuo
from tests.fakes.nuonuo import FakeNuonuo
from tests.fakes.sms_gateways import KEY_ID, SECRET, FakeGateway
from tests.fakes.sms_gateways import running as sms_running
from tests.fakes.smtp import smtp_server
from tests.fixtures.staff import add_staff
from tests.password_page import use_page
from tests.platform.conftest import ADULT_ID_NUMBER
from tests.platform.conftest import TestAccount as Applicant
from tests.platform.test_orders_support import COMPANY, new_enterprise_order, submit
from tests.platform.test_payments_wechatpay import APPID, MCHID, PUBLIC_KEY_ID, FakeWeChatPay
from tests.platform.test_payments_wechatpay import gateway as wechatpay_gateway

__all__ = ["wechatpay_gateway"]  # the WeChat Pay fake's fixture, used by name below

SELLER_TAX_NUMBER = "91440101MA5AAAAA1B"
PHONE = "13912345678"
SERVICE_KEY = "production-service-key-0123"


@pytest.fixture
def tencent_sms() -> Iterator[FakeGateway]:
    with sms_running(FakeGateway(kind="tencent")) as fake:
        yield fake


@pytest.fixture
def invoicing() -> Iterator[FakeNuonuo]:
    with nuonuo.running(FakeNuonuo(seller_tax_number=SELLER_TAX_NUMBER, pending_polls=1)) as fake:
        yield fake


def _pem(key: Any, public: bool = False) -> str:
    if public:
        data = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        data = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return str(data.decode())


def production_environment(
    monkeypatch: pytest.MonkeyPatch,
    sms: FakeGateway,
    pay: tuple[FakeWeChatPay, str],
    invoicing: FakeNuonuo,
    smtp_port: int,
) -> None:
    fake_pay, pay_url = pay
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings = {
        "PLATFORM_SECRET_KEY": "platform-secret-of-the-operator",
        "PLATFORM_DEV_PAGES": "false",
        "PLATFORM_OPERATOR_SERVICE_NAME": "示例电子印章",
        "PLATFORM_OPERATOR_COMPANY": "示例印章服务有限公司",
        "PLATFORM_PRODUCTION_STATION": "remote",
        "PLATFORM_INVOICE_SELLER_TAX_NUMBER": SELLER_TAX_NUMBER,
        "PLATFORM_INVOICE_DRAWER": "李会计",
        # payments: WeChat Pay v3 at the local fake
        "PLATFORM_PAYMENT_PROVIDER": "wechatpay",
        "PLATFORM_WECHATPAY_MCHID": MCHID,
        "PLATFORM_WECHATPAY_APPID": APPID,
        "PLATFORM_WECHATPAY_CERT_SERIAL_NO": "444F4864EA9B34415",
        "PLATFORM_WECHATPAY_PRIVATE_KEY": _pem(merchant_key),
        "PLATFORM_WECHATPAY_APIV3_KEY": fake_pay.platform.apiv3_key,
        "PLATFORM_WECHATPAY_PUBLIC_KEY": _pem(fake_pay.platform.private_key.public_key(), public=True),
        "PLATFORM_WECHATPAY_PUBLIC_KEY_ID": PUBLIC_KEY_ID,
        "PLATFORM_WECHATPAY_GATEWAY": pay_url,
        # SMS: Tencent Cloud at the local fake
        "PLATFORM_SMS_PROVIDER": "tencent",
        "PLATFORM_SMS_ACCESS_KEY_ID": KEY_ID,
        "PLATFORM_SMS_ACCESS_KEY_SECRET": SECRET,
        "PLATFORM_SMS_SIGN_NAME": "示例电子印章",
        "PLATFORM_SMS_TEMPLATE_REGISTER": "2000001",
        "PLATFORM_SMS_TEMPLATE_LOGIN": "2000002",
        "PLATFORM_SMS_TEMPLATE_CANCEL_SEAL": "2000003",
        "PLATFORM_SMS_TEMPLATE_RESET_PASSWORD": "2000004",
        "PLATFORM_SMS_TEMPLATE_EXPORT_DATA": "2000005",
        "PLATFORM_SMS_TEMPLATE_DELETE_ACCOUNT": "2000006",
        "PLATFORM_SMS_TENCENT_APP_ID": "1400000009",
        "PLATFORM_SMS_ENDPOINT": sms.endpoint,
        "PLATFORM_SMS_ENDPOINT_SCHEME": "http",
        # invoices: Nuonuo at the local fake, mailed through the local SMTP server
        "PLATFORM_INVOICE_PROVIDER": "nuonuo",
        "PLATFORM_NUONUO_APP_KEY": nuonuo.APP_KEY,
        "PLATFORM_NUONUO_APP_SECRET": nuonuo.APP_SECRET,
        "PLATFORM_NUONUO_ACCESS_TOKEN": nuonuo.ACCESS_TOKEN,
        "PLATFORM_NUONUO_URL": invoicing.base_url + "/open/v1/services",
        "PLATFORM_NUONUO_POLL_SECONDS": "0",
        "PLATFORM_SMTP_HOST": "127.0.0.1",
        "PLATFORM_SMTP_PORT": str(smtp_port),
        "PLATFORM_SMTP_SECURITY": "none",
        "PLATFORM_SMTP_FROM": "invoice@seal.example.cn",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


async def test_production_mode_registers_pays_invoices_and_mails_through_real_providers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tencent_sms: FakeGateway,
    wechatpay_gateway: tuple[FakeWeChatPay, str],
    invoicing: FakeNuonuo,
) -> None:
    async with smtp_server() as mailbox:
        production_environment(monkeypatch, tencent_sms, wechatpay_gateway, invoicing, mailbox.port)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
            data_dir=tmp_path / "var",
            production=True,
            public_base_url="https://seal.example.cn",
            secret_key=SecretStr("bot-secret-of-the-operator"),
            platform_service_key=SecretStr(SERVICE_KEY),
        )
        settings.check()
        clock = ManualClock()
        sender = RecordingSender(channel="test")
        container = await build_container(settings, clock=clock, extra_senders={"test": sender})
        try:
            chat = ChatHarness(container.engine, container.dispatcher, sender, clock)
            await _walk(container, chat, clock, tencent_sms, wechatpay_gateway[0])
            # The chat receives the invoice file and is told where it was mailed.
            await container.events.drain()
            await container.dispatcher.drain()
            replies = sender.replies_for("u1")
            assert "已同时发送到 caiwu@buyer.example.cn" in " ".join(r.text for r in replies)
            assert any(r.kind is ReplyKind.FILE for r in replies)
        finally:
            await container.stop()
        fake_pay, _url = wechatpay_gateway
        assert [path for _method, path, _body in fake_pay.requests] == ["/v3/pay/transactions/native"]
        assert tencent_sms.bad_signatures == 0
        assert invoicing.bad_signatures == 0
        [mail] = mailbox.messages
        assert mail["To"] == "caiwu@buyer.example.cn"
        assert mail["Subject"].startswith("【示例电子印章】电子发票 ")
        [pdf] = [part for part in mail.iter_attachments() if part.get_content_type() == "application/pdf"]
        assert pdf.get_content() == nuonuo.PDF


async def _walk(
    container: Any, chat: ChatHarness, clock: ManualClock, sms: FakeGateway, fake_pay: FakeWeChatPay
) -> None:
    services = container.platform_services
    assert services.settings.production
    # The production app mounts neither the sandbox pay page nor the dev SMS page.
    platform = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=container.platform_app),
        base_url="http://platform.internal",
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    )
    async with platform as api:
        assert "payment not found" not in (await api.post("/pay/" + "a" * 32)).text
        assert (await api.get("/dev/sms")).status_code == 404

        # 1. Registration in the chat; the code arrives through the Tencent Cloud SMS fake.
        await chat.say("注册")
        asked = await chat.say(PHONE)
        assert "验证码" in " ".join(asked)
        # The code is read where the user reads it: the SMS the gateway was asked to send.
        [message] = sms.sent
        assert (message.phone, message.template) == ("+86" + PHONE, "2000001")
        await chat.say(message.params[0])
        # The password is set on the secure page, never typed into the chat (privacy).
        assert container.password_pages is not None
        view, registered = await use_page(container.password_pages, chat, "seal2024ok")
        assert view.status == "done", view
        assert "注册成功" in " ".join(registered), registered

        # 2. An order of that account, paid through WeChat Pay v3 (Native + signed notification).
        login = await api.post("/v1/sessions", json={"phone": PHONE, "password": "seal2024ok"})
        assert login.status_code == 201, login.text
        account = Applicant(
            account_id=login.json()["account_id"],
            token=login.json()["token"],
            phone=PHONE,
            password="seal2024ok",
        )
        verified = await api.post(
            "/v1/me/realname", json={"name": "张三", "id_number": ADULT_ID_NUMBER}, headers=account.headers
        )
        assert verified.status_code == 200, verified.text
        order = await new_enterprise_order(api, account)
        await submit(api, account, order["id"])
        started = await api.post(f"/v1/orders/{order['id']}/payments", json={}, headers=account.headers)
        assert started.status_code == 201, started.text
        assert started.json()["provider"] == "wechatpay"
        assert started.json()["code_url"].startswith("weixin://wxpay/bizpayurl")
        resource = transaction_resource(
            mchid=MCHID,
            appid=APPID,
            out_trade_no=started.json()["id"],
            amount_fen=order["amount_fen"],
            transaction_id="4200000000000000000042",
            success_time=clock.now(),
        )
        headers, body = fake_pay.platform.notification(resource, now=clock.now())
        notified = await api.post("/v1/payments/notify/wechatpay", content=body, headers=headers)
        assert notified.status_code == 204, notified.text
        paid = (await api.get(f"/v1/orders/{order['id']}", headers=account.headers)).json()
        assert paid["status"] == "under_review"

        # 3. The invoice, issued by finance through the Nuonuo adapter and e-mailed.
        requested = await api.post(
            f"/v1/orders/{order['id']}/invoice",
            json={"title": COMPANY["name"], "tax_number": COMPANY["uscc"], "email": "caiwu@buyer.example.cn"},
            headers=account.headers,
        )
        assert requested.status_code == 201, requested.text
        await add_staff(services, "finance.li", [StaffRole.FINANCE], password="finance-pass-2026")
        staff = await api.post(
            "/v1/staff/sessions", json={"username": "finance.li", "password": "finance-pass-2026"}
        )
        assert staff.status_code == 201, staff.text
        issued = await api.post(
            f"/v1/staff/invoices/{requested.json()['id']}/issue",
            headers={"X-Staff-Token": staff.json()["token"]},
        )
        assert issued.status_code == 200, issued.text
        assert issued.json()["invoice_number"] == "26442000000000012345"
