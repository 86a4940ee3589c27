"""After a full registration through the page, an SMS-code login, and the password typed by
mistake at the home menu, neither the password nor any SMS code is found in any table or file
of the bot's and the platform's databases or in the data directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.secure_page.service import PasswordPages
from tests.conversations.conftest import Service
from tests.password_page import use_page

PHONE = "13800138301"
PASSWORD = "Xq7secretPass99"


def pages_of(service: Service) -> PasswordPages:
    assert service.container.password_pages is not None
    return service.container.password_pages


def found_in_files(root: Path, secret: str) -> list[str]:
    """Files under ``root`` holding ``secret`` (a number only as a whole number)."""
    pattern = re.compile(rb"(?<!\d)" + re.escape(secret.encode()) + rb"(?!\d)")
    return [str(p) for p in root.rglob("*") if p.is_file() and pattern.search(p.read_bytes())]


async def test_no_password_or_code_reaches_storage(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
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
    await service.settle()
    await service.container.stop()  # flush and close both databases (SQLite WAL included)

    for secret in (PASSWORD, register_code, login_code, "6222021234567890128", "6222 0212 3456 7890 128"):
        assert found_in_files(tmp_path, secret) == [], secret
    assert PASSWORD not in caplog.text
    # the first console admin's password (dev mode) is in its 0600 file, not in the log
    admin_password = (tmp_path / "var" / "platform" / "admin-password.txt").read_text().strip()
    logged = [r.getMessage() for phase in ("setup", "call") for r in caplog.get_records(phase)]
    assert any("admin-password.txt" in line for line in logged)
    assert not any(admin_password in line for line in logged)
