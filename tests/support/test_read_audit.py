"""Staff reads in the support inbox are audited one by one (who, when, which conversation):
opening a conversation (its transcript and the customer's records), fetching its transcript,
opening a file the user uploaded. Admins search them on the inbox's audit page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.support.models import SupportAudit
from seal_platform.staff import StaffRole
from tests.support.conftest import desk_settings
from tests.support.service_rig import SupportService, add_staff, build_support_service
from tests.support.test_console import PNG, conversation_url, login, register_and_start_realname

ROW = re.compile(r"<tr><td>[^<]*</td><td>(\w+)</td><td>([^<]+)</td>")


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SupportService]:
    built = await build_support_service(tmp_path, desk_settings())
    await add_staff(built.container, "alice", [StaffRole.SUPPORT])
    await add_staff(built.container, "bob", [StaffRole.SUPPORT])
    await add_staff(built.container, "ada", [StaffRole.ADMIN])
    yield built
    await built.container.stop()


async def reads(service: SupportService) -> list[tuple[str, str, str, object]]:
    async with service.desk.sessions() as session:
        rows = await session.scalars(
            sa.select(SupportAudit)
            .where(SupportAudit.action.in_(("view_conversation", "read_transcript", "view_media")))
            .order_by(SupportAudit.id)
        )
        return [(r.actor, r.action, r.conversation, r.at) for r in rows]


async def test_every_staff_read_of_a_conversation_is_audited_with_who_when_and_which(
    service: SupportService,
) -> None:
    await register_and_start_realname(service)
    await service.chat.upload(PNG, filename="licence.png")
    await service.chat.say("人工")
    key = str(service.chat.key("u1"))
    opened_at = service.clock.now()
    async with service.client() as alice, service.client() as bob:
        await login(alice, "alice")
        await login(bob, "bob")
        page = await alice.get(conversation_url(service))
        assert page.status_code == 200
        transcript = conversation_url(service).replace("/support/c/", "/support/api/c/") + "/transcript"
        # the page's own live refresh of the transcript is the read its opening recorded
        assert (await alice.get(transcript)).status_code == 200
        assert await reads(service) == [("alice", "view_conversation", key, opened_at)]

        assert (await bob.get(transcript)).status_code == 200
        service.clock.advance(timedelta(minutes=11))
        assert (await alice.get(transcript)).status_code == 200
        media_id = next(
            line["file"]["media_id"] for line in (await alice.get(transcript)).json()["lines"] if line["file"]
        )
        assert (await alice.get(f"{conversation_url(service)}/media/{media_id}")).status_code == 200
        later = service.clock.now()
        assert await reads(service) == [
            ("alice", "view_conversation", key, opened_at),
            ("bob", "read_transcript", key, opened_at),
            ("alice", "read_transcript", key, later),
            ("alice", "view_media", key, later),
        ]
        # support staff see the conversation's actions, not who read it; the audit page is for admins
        assert "查看会话" not in (await alice.get(conversation_url(service))).text
        assert (await alice.get("/support/audit")).status_code == 403


async def test_admins_search_the_reads_by_staff_member_and_action(service: SupportService) -> None:
    await register_and_start_realname(service)
    await service.chat.say("人工")
    key = str(service.chat.key("u1"))
    async with service.client() as alice, service.client() as bob, service.client() as ada:
        await login(alice, "alice")
        await login(bob, "bob")
        await login(ada, "ada")
        await alice.get(conversation_url(service))
        await bob.get(conversation_url(service))

        inbox = (await ada.get("/support/")).text
        assert 'href="/support/audit"' in inbox
        everything = await ada.get("/support/audit")
        assert everything.status_code == 200
        assert ("alice", "查看会话") in ROW.findall(everything.text)
        assert ("bob", "查看会话") in ROW.findall(everything.text)
        assert key in everything.text

        alice_only = (await ada.get("/support/audit", params={"actor": "alice"})).text
        assert {who for who, _ in ROW.findall(alice_only)} == {"alice"}
        handoffs = (await ada.get("/support/audit", params={"action": "handoff"})).text
        assert [what for _, what in ROW.findall(handoffs)] == ["转人工"]
        by_conversation = (await ada.get("/support/audit", params={"conversation": "test:nobody:x"})).text
        assert ROW.findall(by_conversation) == []
        assert "没有符合条件的记录" in by_conversation
