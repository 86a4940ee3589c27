"""After a full registration through the page, an SMS-code login, the password typed by mistake
at the home menu, a paid order with a mailing address and an invoice request, neither the
password, any SMS code, the ID number, the recipient's phone and street, the invoice title and
e-mail nor a scan byte is found in any table or file of the bot's and the platform's databases
or in the data directory."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import build_container
from bot.secure_page.service import PasswordPages
from bot.settings import Settings
from bot.testing import ChatHarness, ManualClock, RecordingSender
from tests.contract.postgres import fresh_databases
from tests.conversations.conftest import Service
from tests.password_page import use_page
from tests.platform.test_orders_support import ADDRESS, COMPANY
from tests.privacy.scans import noisy_png

PHONE = "13800138301"
PASSWORD = "Xq7secretPass99"
# What the applicant gives for shipping and the invoice: stored only encrypted.
RECIPIENT_PHONE = "13912345678"
STREET = "滨江大道 8848 号 17 楼"
INVOICE_TITLE = "杭州青禾隐私测试科技有限公司"
INVOICE_EMAIL = "qinghe.finance@example.cn"
ID_NUMBER = "360426199101010071"


def pages_of(service: Service) -> PasswordPages:
    assert service.container.password_pages is not None
    return service.container.password_pages


SCAN_MARK = "scan"


def scan_needle() -> bytes:
    return noisy_png()[200:264]  # 64 bytes from inside the image data


def files_with_bytes(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def found_in_files(root: Path, secret: str) -> list[str]:
    """Files under ``root`` holding ``secret`` (a number only as a whole number)."""
    pattern = re.compile(rb"(?<!\d)" + re.escape(secret.encode()) + rb"(?!\d)")
    return [str(p) for p in root.rglob("*") if p.is_file() and pattern.search(p.read_bytes())]


async def scenario(service: Service) -> list[str]:
    """Registration through the page, mistakes at the menu, an SMS login, a scan uploaded in
    the chat and to the platform; returns what must not be found in clear anywhere."""
    chat = service.chat
    await chat.say("注册")
    await chat.say(PHONE)
    register_code = service.sms_code(PHONE, "register")
    await chat.say(register_code)
    view, _ = await use_page(pages_of(service), chat, PASSWORD)
    assert view.status == "done"
    # at the menu, the user types the password "to log in": a warning, nothing kept
    warned = await chat.say(PASSWORD)
    assert "请不要在聊天里发送密码" in warned[0]
    assert "重置密码" in [o.label for o in chat.options()]
    # an SMS-code login in another chat, and the code typed again by mistake at the menu
    await chat.say("登录", user="second")
    await chat.say(PHONE, user="second")
    await chat.tap("手机号 + 短信验证码", user="second")
    login_code = service.sms_code(PHONE, "login")
    assert "登录成功" in "\n".join(await chat.say(login_code, user="second"))
    await chat.say(login_code, user="second")
    await chat.say(f"我的验证码是 {login_code}，银行卡 6222 0212 3456 7890 128", user="second")
    scan = noisy_png()
    await chat.upload(scan, "licence.png", user="second")
    platform = service.container.platform
    session = await platform.accounts.login_password(PHONE, PASSWORD)
    licence = await platform.documents.upload(session.token, "business_licence", scan, filename="licence.png")
    await paid_order_with_invoice(service, session.token, licence.id)
    await service.settle()
    await service.container.stop()  # flush and close both databases (SQLite WAL included)
    return [
        PASSWORD,
        register_code,
        login_code,
        "6222021234567890128",
        "6222 0212 3456 7890 128",
        RECIPIENT_PHONE,
        STREET,
        INVOICE_TITLE,
        INVOICE_EMAIL,
        ID_NUMBER,
        SCAN_MARK,
    ]


async def paid_order_with_invoice(service: Service, token: str, licence_id: str) -> None:
    """Real name, an enterprise order with a mailing address, paid on the sandbox page, and an
    invoice requested: the personal values the platform must keep only encrypted."""
    platform = service.container.platform
    await platform.accounts.verify_realname(token, name="张三", id_number=ID_NUMBER)
    form = await platform.documents.upload(token, "impression_form", noisy_png(5), filename="form.png")
    order = await platform.orders.create(
        token,
        {
            "type": "enterprise_seal",
            "company": COMPANY,
            "years": 1,
            "mailing_address": {**ADDRESS, "phone": RECIPIENT_PHONE, "address": STREET},
            "documents": {"business_licence": licence_id, "impression_form_enterprise": form.id},
        },
    )
    await platform.orders.submit(token, order.id)
    payment = await platform.orders.start_payment(token, order.id)
    transport = httpx.ASGITransport(app=service.container.platform_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://platform.embedded") as web:
        pressed = await web.post(f"/pay/{payment.id}")
        assert pressed.status_code == 303, pressed.text
    await platform.invoices.request(token, order.id, title=INVOICE_TITLE, email=INVOICE_EMAIL)


async def test_no_password_code_or_scan_reaches_storage_on_sqlite(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = await scenario(service)
    for secret in secrets[:-1]:
        assert found_in_files(tmp_path, secret) == [], secret
    assert files_with_bytes(tmp_path, scan_needle()) == []
    assert PASSWORD not in caplog.text
    # the first console admin's password (dev mode) is in its 0600 file, not in the log
    admin_password = (tmp_path / "var" / "platform" / "admin-password.txt").read_text().strip()
    logged = [r.getMessage() for phase in ("setup", "call") for r in caplog.get_records(phase)]
    assert any("admin-password.txt" in line for line in logged)
    assert not any(admin_password in line for line in logged)


async def every_row_as_text(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = (
                await conn.execute(
                    sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                )
            ).scalars()
            rows = []
            for table in list(tables):
                # the names come from information_schema, not from input
                query = sa.text(f'SELECT t::text FROM "{table}" t')  # noqa: S608
                rows += [str(r) for r in (await conn.execute(query)).scalars()]
    finally:
        await engine.dispose()
    return "\n".join(rows)


@pytest.mark.postgres
async def test_no_password_code_or_scan_reaches_storage_on_postgresql(tmp_path: Path) -> None:
    async with fresh_databases(2, "sealbot_privacy") as (bot_url, platform_url):
        settings = Settings(
            database_url=bot_url,
            platform_database_url=platform_url,
            data_dir=tmp_path / "var",
            public_base_url="http://127.0.0.1:8000",
        )
        clock = ManualClock()
        sender = RecordingSender(channel="test")
        container = await build_container(settings, clock=clock, extra_senders={"test": sender})
        service = Service(
            container, ChatHarness(container.engine, container.dispatcher, sender, clock), clock
        )
        secrets = await scenario(service)
        stored = await every_row_as_text(bot_url) + await every_row_as_text(platform_url)
        assert "***************0128" in stored  # the dump read the receipts: masked, not absent
        for secret in secrets[:-1]:
            assert re.search(rf"(?<!\d){re.escape(secret)}(?!\d)", stored) is None, secret
            assert found_in_files(tmp_path, secret) == [], secret
        assert scan_needle().hex() not in stored
        assert files_with_bytes(tmp_path, scan_needle()) == []
