"""Opt-in e-mailed status notices, end to end against a real local SMTP server (aiosmtpd).

An account that gave an address and opted in (``PUT /v1/me/notices``) is mailed, after each
commit, when its order is paid, rejected (with the reason), approved, made, shipped (with the
waybill) and invoiced; in the language it chose; an account that did not opt in, or opted out,
gets nothing; without SMTP settings nobody can opt in.
"""

from __future__ import annotations

from email.message import EmailMessage

import httpx

from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from tests.fakes.smtp import Mailbox, smtp_server
from tests.platform.conftest import MakeAccount
from tests.platform.conftest import TestAccount as Applicant
from tests.platform.test_orders_support import (
    Staff,
    another_company,
    paid_enterprise_order,
    staff_post,
    upload,
)
from tests.platform.test_orders_support import admin as admin

REASON = "营业执照扫描件不清晰，请重新上传"
WAYBILL = "SF1234567890123"


def _mail_on(settings: PlatformSettings, port: int) -> None:
    settings.smtp_host, settings.smtp_port = "127.0.0.1", port
    settings.smtp_security, settings.smtp_from = "none", "notice@seal.example.cn"


async def _opt_in(api: httpx.AsyncClient, account: Applicant, email: str, language: str = "zh-CN") -> None:
    chosen = await api.put(
        "/v1/me/notices",
        json={"enabled": True, "email": email, "language": language},
        headers=account.headers,
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json() == {"available": True, "enabled": True, "email": email, "language": language}


def _to(mailbox: Mailbox, address: str) -> list[EmailMessage]:
    return [m for m in mailbox.messages if m["To"] == address]


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def test_an_opted_in_account_is_mailed_each_main_status_and_the_others_are_not(
    platform_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    admin: Staff,
) -> None:
    async with smtp_server() as mailbox:
        _mail_on(platform_settings, mailbox.port)
        opted = await make_account(realname=True)
        silent = await make_account(realname=True)
        await _opt_in(api, opted, "zhang@example.cn")
        await paid_enterprise_order(api, silent, company=another_company(2))

        order = await paid_enterprise_order(api, opted)
        oid = order["id"]
        assert (await staff_post(api, admin, f"/orders/{oid}/reject", {"reason": REASON})).status_code == 200
        licence = await upload(api, opted, "business_licence")
        resubmitted = await api.post(
            f"/v1/orders/{oid}/resubmit",
            json={"documents": {"business_licence": licence}},
            headers=opted.headers,
        )
        assert resubmitted.status_code == 200, resubmitted.text
        for step, body in (("approve", None), ("produce", None), ("ship", {"waybill": WAYBILL})):
            done = await staff_post(api, admin, f"/orders/{oid}/{step}", body)
            assert done.status_code == 200, done.text
        invoice = await api.post(
            f"/v1/orders/{oid}/invoice",
            json={"title": "某某科技有限公司", "email": "caiwu@buyer.example.cn"},
            headers=opted.headers,
        )
        assert invoice.status_code == 201, invoice.text
        issued = await staff_post(api, admin, f"/invoices/{invoice.json()['id']}/issue")
        assert issued.status_code == 200, issued.text
        await platform_services.db.settle()

        code = oid[:8].upper()
        notices = _to(mailbox, "zhang@example.cn")
        assert [m["Subject"] for m in notices] == [
            f"【电子印章服务】订单 {code}：{status}"
            for status in ("已付款", "审核未通过", "审核通过", "印章已制作", "已寄出", "发票已开具")
        ]
        paid, rejected, _approved, _made, shipped, invoiced = (_text(m) for m in notices)
        assert f"已收到付款 ¥{order['amount_fen'] / 100:.2f}" in paid
        assert "企业公章办理" in paid
        assert f"原因：{REASON}" in rejected
        assert f"运单号 {WAYBILL}" in shipped
        assert WAYBILL in shipped.split("查询物流：", 1)[1]
        assert f"发票号码 {issued.json()['invoice_number']}" in invoiced
        assert all("邮件通知" in _text(m) for m in notices)  # how to turn them off
        # The invoice itself went to the address given for it; nothing to the silent account.
        assert len(_to(mailbox, "caiwu@buyer.example.cn")) == 1
        assert len(mailbox.messages) == len(notices) + 1


async def test_notices_come_in_the_chosen_language_and_stop_when_opted_out(
    platform_settings: PlatformSettings,
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    admin: Staff,
) -> None:
    async with smtp_server() as mailbox:
        _mail_on(platform_settings, mailbox.port)
        account = await make_account(realname=True)
        await _opt_in(api, account, "li@example.com", language="en")
        order = await paid_enterprise_order(api, account)
        await platform_services.db.settle()
        [paid] = mailbox.messages
        assert paid["Subject"] == f"[电子印章服务] Order {order['id'][:8].upper()}: paid"
        assert paid["Content-Language"] == "en"
        assert "We received the payment of CNY" in _text(paid)

        off = await api.put("/v1/me/notices", json={"enabled": False}, headers=account.headers)
        assert off.json() == {
            "available": True,
            "enabled": False,
            "email": "li@example.com",
            "language": "en",
        }
        assert (await staff_post(api, admin, f"/orders/{order['id']}/approve")).status_code == 200
        await platform_services.db.settle()
        assert len(mailbox.messages) == 1
        # Opting in again may omit the address given before.
        again = await api.put("/v1/me/notices", json={"enabled": True}, headers=account.headers)
        assert again.json()["email"] == "li@example.com"


async def test_without_smtp_settings_nobody_can_opt_in(
    api: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account()
    shown = await api.get("/v1/me/notices", headers=account.headers)
    assert shown.json() == {"available": False, "enabled": False, "email": "", "language": "zh-CN"}
    refused = await api.put(
        "/v1/me/notices", json={"enabled": True, "email": "a@example.cn"}, headers=account.headers
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "notice_mail_unavailable"
