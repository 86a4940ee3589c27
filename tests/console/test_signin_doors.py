"""Staff sign-in through every door (the platform console, the support inbox, the staff API)
goes through one function: the same lock for a guessed name, the same counts across doors, and
no lock of ``admin`` from wrong passwords for other names."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from seal_platform.staff import StaffRole
from tests.console.support import ConsoleClient
from tests.support.conftest import desk_settings
from tests.support.service_rig import STAFF_PASSWORD, SupportService, add_staff, build_support_service

_SUPPORT_CSRF = re.compile(r'name="csrf" value="([^"]+)"')

# "ok", "wrong" or "locked", whichever door was used.
Door = Callable[[str, str, str], Awaitable[str]]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SupportService]:
    built = await build_support_service(tmp_path, desk_settings())
    await add_staff(built.container, "admin.root", [StaffRole.ADMIN])
    yield built
    await built.container.stop()


def _client(app: object, ip: str, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url=base_url)  # type: ignore[arg-type]


async def console_door(service: SupportService, username: str, password: str, ip: str) -> str:
    async with _client(service.container.platform_app, ip, "http://platform.test") as http:
        response = await ConsoleClient(http).login(username, password)
    return {303: "ok", 401: "wrong", 429: "locked"}[response.status_code]


async def support_door(service: SupportService, username: str, password: str, ip: str) -> str:
    async with _client(service.app(), ip, "http://testserver") as http:
        form = await http.get("/support/login")
        match = _SUPPORT_CSRF.search(form.text)
        assert match is not None
        response = await http.post(
            "/support/login", data={"username": username, "password": password, "csrf": match.group(1)}
        )
    location = response.headers["location"]
    return {"/support/": "ok", "/support/login?error=bad_credentials": "wrong"}.get(
        location, "locked" if location.endswith("error=locked") else location
    )


async def api_door(service: SupportService, username: str, password: str, ip: str) -> str:
    key = service.container.settings.platform_service_key.get_secret_value()
    async with _client(service.container.platform_app, ip, "http://platform.test") as http:
        response = await http.post(
            "/v1/staff/sessions",
            json={"username": username, "password": password},
            headers={"Authorization": f"Bearer {key}"},
        )
    return {201: "ok", 401: "wrong", 429: "locked"}[response.status_code]


DOORS = {"console": console_door, "support": support_door, "staff_api": api_door}


@pytest.mark.parametrize("door", sorted(DOORS))
async def test_thirty_wrong_passwords_for_admin_then_the_right_one_are_refused_at_every_door(
    service: SupportService, door: str
) -> None:
    enter = DOORS[door]
    answers = [await enter(service, "admin.root", f"guess-{n}", f"198.51.100.{n}") for n in range(30)]
    assert answers[:5] == ["wrong"] * 5
    assert set(answers[5:]) == {"locked"}
    assert await enter(service, "admin.root", STAFF_PASSWORD, "203.0.113.9") == "locked"
    # The lock is short: a quarter of an hour later the right password works again.
    service.clock.advance(timedelta(minutes=15, seconds=1))
    assert await enter(service, "admin.root", STAFF_PASSWORD, "203.0.113.9") == "ok"


@pytest.mark.parametrize("door", sorted(DOORS))
async def test_wrong_passwords_for_other_names_from_one_address_never_lock_admin(
    service: SupportService, door: str
) -> None:
    enter = DOORS[door]
    for n in range(7):
        assert await enter(service, f"nobody{n % 2}", "whatever-pass", "192.0.2.7") == "wrong"
    assert await enter(service, "admin.root", STAFF_PASSWORD, "192.0.2.7") == "ok"


async def test_guesses_at_different_doors_count_toward_the_same_lock(service: SupportService) -> None:
    doors = [console_door, support_door, api_door, console_door, support_door]
    for n, enter in enumerate(doors):
        assert await enter(service, "admin.root", "not-it", f"10.0.0.{n}") == "wrong"
    for enter in DOORS.values():
        assert await enter(service, "admin.root", STAFF_PASSWORD, "10.0.1.1") == "locked"


async def test_an_address_guessing_many_names_waits_longer_and_longer(service: SupportService) -> None:
    for n in range(10):
        assert await api_door(service, f"spray{n}", "whatever-pass", "192.0.2.66") == "wrong"
    waits = []
    for n in range(4):
        assert await api_door(service, f"more{n}", "whatever-pass", "192.0.2.66") == "wrong"
        assert await api_door(service, "admin.root", STAFF_PASSWORD, "192.0.2.66") == "locked"
        key = service.container.settings.platform_service_key.get_secret_value()
        async with _client(service.container.platform_app, "192.0.2.66", "http://platform.test") as http:
            refused = await http.post(
                "/v1/staff/sessions",
                json={"username": "admin.root", "password": STAFF_PASSWORD},
                headers={"Authorization": f"Bearer {key}"},
            )
        waits.append(int(refused.json()["details"]["retry_after"]))
        service.clock.advance(timedelta(seconds=waits[-1]))
    assert waits == [1, 2, 4, 8]
    # Another address, and the admin account itself, are untouched.
    assert await api_door(service, "admin.root", STAFF_PASSWORD, "192.0.2.67") == "ok"


async def test_the_staff_api_needs_the_service_key(service: SupportService) -> None:
    async with _client(service.container.platform_app, "192.0.2.1", "http://platform.test") as http:
        response = await http.post(
            "/v1/staff/sessions", json={"username": "admin.root", "password": STAFF_PASSWORD}
        )
    assert response.status_code == 401
    assert "token" not in response.json()
