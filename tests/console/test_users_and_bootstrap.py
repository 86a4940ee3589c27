"""Staff user management by admins, and the first admin of a fresh platform."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable

import pytest
from sqlalchemy import select

from seal_platform.console.bootstrap import create_staff_user, ensure_bootstrap_admin, password_file
from seal_platform.errors import InvalidInput
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffUser
from seal_platform.staff_actions import AuditEntry
from tests.console.conftest import StaffFactory
from tests.console.support import ConsoleClient


def _user_id(page: str, username: str) -> str:
    row = page.split(f'id="user-{username}"')[1].split("</tr>")[0]
    found = re.search(r"/users/([0-9a-f-]{36})/", row)
    assert found, row
    return found.group(1)


async def test_an_admin_creates_a_staff_member_who_can_then_log_in_with_those_roles(
    console_for: StaffFactory, anonymous: Callable[..., ConsoleClient], platform_services: PlatformServices
) -> None:
    admin = await console_for("root", ["admin"])
    message = await admin.act(
        "/users",
        {
            "username": "Chen.Review",
            "display_name": "陈审核",
            "password": "a-long-password",
            "roles": ["reviewer", "support"],
        },
    )
    assert "已创建" in message
    assert 'id="user-chen.review"' in (admin.last.text if admin.last else "")

    newcomer = anonymous()
    assert (await newcomer.login("chen.review", "a-long-password")).status_code == 303
    assert (await newcomer.get("/review")).status_code == 200
    assert (await newcomer.get("/production")).status_code == 403
    async with platform_services.db.session() as session:
        entry = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "create_staff_user", AuditEntry.actor == "staff:root"
            )
        )
    assert entry is not None
    assert entry.after == {"username": "chen.review", "roles": ["reviewer", "support"], "active": True}


async def test_bad_new_users_are_refused_with_a_message(console_for: StaffFactory) -> None:
    admin = await console_for("root", ["admin"])
    assert "至少10位" in await admin.act(
        "/users", {"username": "short", "password": "short", "roles": ["reviewer"]}
    )
    assert "至少选择一个角色" in await admin.act(
        "/users", {"username": "noroles", "password": "long-enough-pw"}
    )
    assert "用户名" in await admin.act(
        "/users", {"username": "bad name!", "password": "long-enough-pw", "roles": ["reviewer"]}
    )
    assert "已被使用" in await admin.act(
        "/users", {"username": "root", "password": "long-enough-pw", "roles": ["reviewer"]}
    )


async def test_a_password_reset_logs_the_member_out_and_only_the_new_password_works(
    console_for: StaffFactory, anonymous: Callable[..., ConsoleClient]
) -> None:
    admin = await console_for("root", ["admin"])
    member = await console_for("ma.producer", ["producer"])
    users = await admin.get("/users")

    message = await admin.act(
        f"/users/{_user_id(users.text, 'ma.producer')}/password", {"password": "brand-new-secret"}
    )

    assert "密码已重置" in message
    assert (await member.get("/production")).status_code == 303  # the old session is gone
    assert (await anonymous(ip="10.3.0.1").login("ma.producer", "console-pass-123")).status_code == 401
    assert (await anonymous(ip="10.3.0.2").login("ma.producer", "brand-new-secret")).status_code == 303
    audit = await admin.get("/audit", action="reset_staff_password")
    assert "brand-new-secret" not in audit.text


async def test_disabling_a_member_ends_their_session_and_enabling_lets_them_back(
    console_for: StaffFactory, anonymous: Callable[..., ConsoleClient]
) -> None:
    admin = await console_for("root", ["admin"])
    member = await console_for("he.shipper", ["shipper"])
    member_id = _user_id((await admin.get("/users")).text, "he.shipper")

    assert "已停用" in await admin.act(f"/users/{member_id}/disable")
    assert (await member.get("/shipping")).status_code == 303
    assert (await anonymous(ip="10.4.0.1").login("he.shipper", "console-pass-123")).status_code == 401

    assert "已启用" in await admin.act(f"/users/{member_id}/enable")
    assert (await anonymous(ip="10.4.0.2").login("he.shipper", "console-pass-123")).status_code == 303


async def test_admins_cannot_disable_themselves_and_others_cannot_manage_users(
    console_for: StaffFactory, platform_services: PlatformServices
) -> None:
    admin = await console_for("root", ["admin"])
    own_row = (await admin.get("/users")).text.split('id="user-root"')[1].split("</tr>")[0]
    assert "/disable" not in own_row  # no button for it
    async with platform_services.db.session() as session:
        own_id = await session.scalar(select(StaffUser.id).where(StaffUser.username == "root"))
    assert "不能停用自己的账号" in await admin.act(f"/users/{own_id}/disable")
    assert (await admin.get("/")).status_code == 200

    reviewer = await console_for("li.reviewer", ["reviewer"])
    sneaky = await reviewer.post(
        "/users", {"username": "sneaky", "password": "long-enough-pw", "roles": ["admin"]}
    )
    assert sneaky.status_code == 403


async def test_the_first_start_creates_an_admin_with_a_private_password_file_once(
    platform_app: object, platform_services: PlatformServices, anonymous: Callable[..., ConsoleClient]
) -> None:
    password = await ensure_bootstrap_admin(platform_services)

    assert password is not None
    assert len(password) >= 20
    path = password_file(platform_services)
    assert path.read_text().strip() == password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await ensure_bootstrap_admin(platform_services) is None
    async with platform_services.db.session() as session:
        (admin,) = list(await session.scalars(select(StaffUser)))
    assert (admin.username, admin.roles) == ("admin", ["admin"])
    assert (await anonymous().login("admin", password)).status_code == 303


async def test_no_bootstrap_admin_when_staff_already_exist(
    platform_app: object, platform_services: PlatformServices
) -> None:
    await create_staff_user(platform_services, "ops", "operator-password", ["admin"])
    assert await ensure_bootstrap_admin(platform_services) is None
    assert not password_file(platform_services).exists()


async def test_the_cli_helper_validates_roles(
    platform_app: object, platform_services: PlatformServices
) -> None:
    with pytest.raises(InvalidInput):
        await create_staff_user(platform_services, "someone", "operator-password", ["janitor"])
