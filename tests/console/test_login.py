"""Console login: sessions in a strict cookie, lock-out after repeated failures, expiry, logout."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from seal_platform.clock import FrozenClock
from seal_platform.console.bootstrap import create_staff_user
from seal_platform.console.sessions import ConsoleSession
from seal_platform.security import token_digest
from seal_platform.services import PlatformServices
from tests.console.conftest import StaffFactory
from tests.console.support import STAFF_PASSWORD, ConsoleClient


async def test_right_password_opens_the_dashboard_with_a_strict_httponly_console_cookie(
    console_for: StaffFactory, platform_services: PlatformServices
) -> None:
    console = await console_for("li.reviewer", ["reviewer"], login=False)
    response = await console.login("li.reviewer", STAFF_PASSWORD)

    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("console_session="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "path=/console" in cookie.lower()
    # The table holds a digest of the cookie, never the cookie itself.
    session_id = console.http.cookies["console_session"]
    async with platform_services.db.session() as session:
        stored = list(await session.scalars(select(ConsoleSession.id_hash)))
    assert stored == [token_digest(session_id)]

    dashboard = await console.get("/")
    assert dashboard.status_code == 200
    assert 'id="count-review"' in dashboard.text
    assert "default-src 'none'" in dashboard.headers["content-security-policy"]


async def test_pages_send_a_visitor_without_session_to_the_login_page(
    anonymous: Callable[..., ConsoleClient],
) -> None:
    visitor = anonymous()
    response = await visitor.get("/review")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Freview"


async def test_login_returns_to_the_page_asked_for_but_never_off_the_console(
    console_for: StaffFactory,
) -> None:
    console = await console_for("next.user", ["reviewer"], login=False)
    form = await console.get("/login", next="/console/review")
    assert 'name="next" value="/console/review"' in form.text
    response = await console.post(
        "/login", {"username": "next.user", "password": STAFF_PASSWORD, "next": "//evil.example/console/"}
    )
    assert response.headers["location"] == "/console/"


async def test_five_wrong_passwords_lock_the_username_for_fifteen_minutes(
    console_for: StaffFactory, anonymous: Callable[..., ConsoleClient], clock: FrozenClock
) -> None:
    await console_for("wang.producer", ["producer"], login=False)
    # Each attempt from another address: the username's own count is what locks.
    for attempt in range(5):
        refused = await anonymous(ip=f"10.0.0.{attempt + 1}").login("wang.producer", "wrong-password")
        assert refused.status_code == 401
        assert "用户名或密码错误" in refused.text

    locked = await anonymous(ip="10.0.1.1").login("wang.producer", STAFF_PASSWORD)
    assert locked.status_code == 429
    assert "锁定" in locked.text
    assert "console_session" not in locked.headers.get("set-cookie", "")

    clock.advance(timedelta(minutes=15, seconds=1))
    assert (await anonymous(ip="10.0.1.1").login("wang.producer", STAFF_PASSWORD)).status_code == 303


async def test_failures_from_one_address_slow_that_address_but_never_lock_another_username(
    console_for: StaffFactory, anonymous: Callable[..., ConsoleClient], clock: FrozenClock
) -> None:
    await console_for("zhao.shipper", ["shipper"], login=False)
    for attempt in range(10):
        assert (await anonymous(ip="192.0.2.7").login(f"nobody{attempt}", "whatever-pass")).status_code == 401
    # Wrong passwords for other names do not lock this one, even from the same address.
    assert (await anonymous(ip="192.0.2.7").login("zhao.shipper", STAFF_PASSWORD)).status_code == 303

    assert (await anonymous(ip="192.0.2.7").login("nobody11", "whatever-pass")).status_code == 401
    slowed = await anonymous(ip="192.0.2.7").login("zhao.shipper", STAFF_PASSWORD)
    assert slowed.status_code == 429
    assert "秒后再试" in slowed.text
    # Another address is not affected.
    assert (await anonymous(ip="192.0.2.8").login("zhao.shipper", STAFF_PASSWORD)).status_code == 303
    clock.advance(timedelta(seconds=2))
    assert (await anonymous(ip="192.0.2.7").login("zhao.shipper", STAFF_PASSWORD)).status_code == 303


async def test_a_successful_login_clears_the_username_count(
    console_for: StaffFactory, anonymous: Callable[..., ConsoleClient]
) -> None:
    await console_for("sun.finance", ["finance"], login=False)
    for attempt in range(4):
        assert (await anonymous(ip=f"10.1.0.{attempt}").login("sun.finance", "nope-nope")).status_code == 401
    assert (await anonymous(ip="10.1.1.1").login("sun.finance", STAFF_PASSWORD)).status_code == 303
    for attempt in range(4):
        assert (await anonymous(ip=f"10.2.0.{attempt}").login("sun.finance", "nope-nope")).status_code == 401
    assert (await anonymous(ip="10.2.1.1").login("sun.finance", STAFF_PASSWORD)).status_code == 303


async def test_unknown_and_disabled_users_get_the_same_refusal_as_a_wrong_password(
    console_for: StaffFactory, anonymous: Callable[..., ConsoleClient], platform_services: PlatformServices
) -> None:
    admin = await console_for("boss", ["admin"])
    await create_staff_user(platform_services, "gone.user", STAFF_PASSWORD, ["support"])
    users = await admin.get("/users")
    gone_id = users.text.split('id="user-gone.user"')[1].split("/users/")[1].split("/")[0]
    assert "已停用" in await admin.act(f"/users/{gone_id}/disable")

    unknown = await anonymous(ip="10.9.0.1").login("no.such.user", STAFF_PASSWORD)
    disabled = await anonymous(ip="10.9.0.2").login("gone.user", STAFF_PASSWORD)
    wrong = await anonymous(ip="10.9.0.3").login("boss", "not-the-password")
    assert unknown.status_code == disabled.status_code == wrong.status_code == 401
    assert all("用户名或密码错误" in r.text for r in (unknown, disabled, wrong))


async def test_login_form_without_its_csrf_cookie_is_refused(
    console_for: StaffFactory, anonymous: Callable[..., ConsoleClient]
) -> None:
    await console_for("csrf.login", ["reviewer"], login=False)
    visitor = anonymous()
    # No GET of the login page first: no login CSRF cookie, a made-up token.
    response = await visitor.http.post(
        "/console/login", data={"username": "csrf.login", "password": STAFF_PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert "console_session" not in response.headers.get("set-cookie", "")


async def test_logout_ends_the_session_on_the_server(console_for: StaffFactory) -> None:
    console = await console_for("zhou.support", ["support"])
    stolen = console.http.cookies["console_session"]
    await console.get("/")
    response = await console.post("/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"

    console.http.cookies.set("console_session", stolen, domain="platform.test", path="/console")
    assert (await console.get("/")).status_code == 303


async def test_a_session_idle_for_thirty_minutes_expires(
    console_for: StaffFactory, clock: FrozenClock
) -> None:
    console = await console_for("idle.user", ["reviewer"])
    clock.advance(timedelta(minutes=29))
    assert (await console.get("/")).status_code == 200
    clock.advance(timedelta(minutes=29))  # active 29 minutes ago: still alive
    assert (await console.get("/")).status_code == 200
    clock.advance(timedelta(minutes=30))
    expired = await console.get("/review")
    assert expired.status_code == 303
    assert expired.headers["location"].startswith("/console/login")


async def test_a_busy_session_still_ends_after_twelve_hours(
    console_for: StaffFactory, clock: FrozenClock
) -> None:
    console = await console_for("busy.user", ["reviewer"])
    for _ in range(12 * 3 - 1):
        clock.advance(timedelta(minutes=20))
        assert (await console.get("/")).status_code == 200
    clock.advance(timedelta(minutes=20))
    assert (await console.get("/")).status_code == 303


async def test_the_console_works_under_the_platform_mount_of_the_embedded_default(
    platform_app: FastAPI, platform_services: PlatformServices
) -> None:
    await create_staff_user(platform_services, "mounted", STAFF_PASSWORD, ["reviewer"])
    outer = FastAPI()
    outer.mount("/platform", platform_app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=outer), base_url="http://bot.test"
    ) as http:
        console = ConsoleClient(http, prefix="/platform/console")
        away = await console.get("/review")
        assert away.headers["location"] == "/platform/console/login?next=%2Fplatform%2Fconsole%2Freview"
        login = await console.login("mounted", STAFF_PASSWORD)
        assert login.headers["location"] == "/platform/console/"
        assert "path=/platform/console" in login.headers["set-cookie"].lower()
        review = await console.get("/review")
        assert review.status_code == 200
        assert 'href="/platform/console/static/console.css"' in review.text


async def test_expired_sessions_are_purged_when_someone_logs_in(
    console_for: StaffFactory, clock: FrozenClock, platform_services: PlatformServices
) -> None:
    await console_for("left.yesterday", ["reviewer"])
    clock.advance(timedelta(hours=13))
    await console_for("here.today", ["reviewer"])
    async with platform_services.db.session() as session:
        assert len(list(await session.scalars(select(ConsoleSession)))) == 1
