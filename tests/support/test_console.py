"""The support inbox over HTTP, on the whole service with the embedded platform."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest

from bot.engine.messages import ReplyKind
from bot.engine.state import Owner
from seal_platform.staff import StaffRole
from tests.support.conftest import desk_settings
from tests.support.service_rig import STAFF_PASSWORD, SupportService, add_staff, build_support_service

PHONE = "13800138000"
ID_NUMBER = "360426199101010071"  # not the example the prompt shows
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SupportService]:
    built = await build_support_service(tmp_path, desk_settings())
    await add_staff(built.container, "alice", [StaffRole.SUPPORT])
    await add_staff(built.container, "bob", [StaffRole.SUPPORT])
    await add_staff(built.container, "rita", [StaffRole.REVIEWER])
    yield built
    await built.container.stop()


async def login(client: httpx.AsyncClient, username: str, password: str = STAFF_PASSWORD) -> httpx.Response:
    form = await client.get("/support/login")
    match = CSRF.search(form.text)
    assert match is not None
    return await client.post(
        "/support/login", data={"username": username, "password": password, "csrf": match.group(1)}
    )


async def csrf_of(client: httpx.AsyncClient) -> str:
    match = CSRF.search((await client.get("/support/")).text)
    assert match is not None
    return match.group(1)


async def register(service: SupportService) -> None:
    chat = service.chat
    await chat.say("注册")
    await chat.say(PHONE)
    await chat.say(service.sms_code(PHONE, "register"))
    await chat.say("seal2024ok")


async def register_and_start_realname(service: SupportService) -> None:
    await register(service)
    await start_realname(service)


async def start_realname(service: SupportService) -> None:
    chat = service.chat
    await chat.say("实名认证")
    await chat.say("张三")
    await chat.say(ID_NUMBER)  # now at the summary: the ID number is an answer of the form


def conversation_url(service: SupportService, user: str = "u1") -> str:
    return f"/support/c/{quote(str(service.chat.key(user)), safe='')}"


async def test_only_support_staff_with_the_right_password_get_in(service: SupportService) -> None:
    async with service.client() as client:
        assert (await client.get("/support/")).headers["location"] == "/support/login"
        wrong = await login(client, "alice", "not-the-password")
        assert wrong.headers["location"] == "/support/login?error=bad_credentials"
        reviewer = await login(client, "rita")
        assert reviewer.headers["location"] == "/support/login?error=no_support_role"
        assert (await client.get("/support/api/queue")).status_code == 401

        admitted = await login(client, "alice")

        assert admitted.headers["location"] == "/support/"
        assert "sealbot_support" in admitted.headers["set-cookie"]
        assert "HttpOnly" in admitted.headers["set-cookie"]
        assert (await client.get("/support/api/queue")).status_code == 200


async def test_a_login_form_without_its_own_token_is_refused(service: SupportService) -> None:
    async with service.client() as client:
        await client.get("/support/login")
        forged = await client.post(
            "/support/login", data={"username": "alice", "password": STAFF_PASSWORD, "csrf": "forged"}
        )
        assert forged.headers["location"] == "/support/login?error=expired_form"


async def test_staff_actions_need_the_session_csrf_token(service: SupportService) -> None:
    await service.chat.say("你好")
    await service.chat.say("人工")
    async with service.client() as client:
        await login(client, "alice")
        refused = await client.post(conversation_url(service) + "/claim", data={"csrf": "wrong"})
        assert refused.status_code == 403
        assert await service.container.store.owner_of(service.chat.key("u1")) == Owner.WAITING

        accepted = await client.post(
            conversation_url(service) + "/claim", data={"csrf": await csrf_of(client)}
        )

        assert accepted.status_code == 303
        assert await service.container.store.owner_of(service.chat.key("u1")) == Owner.staff("alice")


async def test_the_staff_view_shows_the_form_in_progress_masked_and_the_users_orders(
    service: SupportService,
) -> None:
    await register(service)
    row = await service.container.store.get(service.chat.key("u1"))
    assert row is not None
    token = service.container.engine.codec.load(row.state).session
    assert token is not None
    # Orders need a verified applicant: verified straight on the platform, then an order.
    await service.platform_call(
        "POST", "/v1/me/realname", token=token.token, json={"name": "张三", "id_number": ID_NUMBER}
    )
    order = await service.platform_call(
        "POST",
        "/v1/orders",
        token=token.token,
        json={
            "type": "enterprise_seal",
            "years": 2,
            "company": {
                "name": "某某科技有限公司",
                "uscc": "91110000600037341L",
                "legal_rep_name": "张三",
                "legal_rep_id": ID_NUMBER,
            },
        },
    )
    await start_realname(service)
    await service.chat.say("人工")
    async with service.client() as client:
        await login(client, "alice")

        page = (await client.get(conversation_url(service))).text

    assert "实名认证" in page
    assert "360*************71" in page
    assert ID_NUMBER not in page  # not in the form, the transcript or the orders
    assert "138****8000" in page
    assert order["id"][:8] in page
    assert "enterprise_seal" in page


async def test_claim_reply_canned_file_and_hand_back_over_http(service: SupportService) -> None:
    await register_and_start_realname(service)
    key = service.chat.key("u1")
    await service.chat.say("人工")
    async with service.client() as client:
        await login(client, "alice")
        csrf = await csrf_of(client)
        queue = (await client.get("/support/api/queue")).json()["tickets"]
        assert [t["conversation"] for t in queue] == [str(key)]
        assert queue[0]["state"] == "waiting"

        await client.post(conversation_url(service) + "/claim", data={"csrf": csrf})
        await client.post(
            "/support/canned",
            data={"csrf": csrf, "title": "营业执照", "text": "请上传加盖公章的营业执照扫描件。"},
        )
        [canned] = await service.desk.canned_answers()
        await client.post(
            conversation_url(service) + "/reply", data={"csrf": csrf, "text": "您好，我是客服 alice。"}
        )
        await client.post(
            conversation_url(service) + "/reply", data={"csrf": csrf, "canned_id": str(canned.id)}
        )
        await client.post(
            conversation_url(service) + "/reply",
            data={"csrf": csrf, "text": "示例"},
            files={"file": ("sample.png", PNG, "image/png")},
        )
        await service.settle()
        sent = service.chat.sender.sent[-3:]
        assert [m.reply.text for m in sent] == [
            "您好，我是客服 alice。",
            "请上传加盖公章的营业执照扫描件。",
            "示例",
        ]
        assert sent[-1].reply.kind is ReplyKind.IMAGE
        assert sent[-1].reply.file is not None
        assert await service.container.engine.media.get(sent[-1].reply.file.media_id) == PNG
        # The file staff sent can be opened from the transcript; others cannot.
        media_url = conversation_url(service) + f"/media/{sent[-1].reply.file.media_id}"
        assert (await client.get(media_url)).content == PNG
        assert (await client.get(conversation_url(service) + "/media/" + "0" * 64)).status_code == 404

        # Another agent is refused politely.
        async with service.client() as other:
            await login(other, "bob")
            taken = await other.post(
                conversation_url(service) + "/claim", data={"csrf": await csrf_of(other)}
            )
            assert taken.headers["location"].endswith("?error=already_claimed")

        await client.post(conversation_url(service) + "/hand-back", data={"csrf": csrf})
        await service.settle()

    texts = service.chat.transcript()
    assert texts[-2] == "客服已将您转回智能助手，我们从您刚才的步骤继续。"
    # The realname summary again, with the answers given before staff took over.
    assert texts[-1].startswith("（第 3/3 步） 请核对实名信息，提交后不能修改：")
    assert "张三" in texts[-1]
    assert "360*************71" in texts[-1]
    assert await service.container.store.owner_of(key) == Owner.BOT


async def test_staff_times_are_shown_in_the_support_time_zone_as_beijing_time(
    service: SupportService,
) -> None:
    # The clock is UTC on the server; the transcript's times are Beijing time (UTC+8).
    await service.chat.say("人工")
    said_at = service.chat.clock.now()
    async with service.client() as client:
        await login(client, "alice")
        page = (await client.get(conversation_url(service))).text
    local = said_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M")
    utc = said_at.astimezone(UTC).strftime("%m-%d %H:%M")
    assert "时间均为北京时间" in page
    assert f"用户 · {local}" in page
    assert f"用户 · {utc}" not in page
