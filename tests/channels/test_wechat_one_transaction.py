"""A WeChat message on the embedded default costs one write transaction: the nonce it used,
the customer-service allowance it opened, the state, its replies, its receipt, the passive
claim and the answer's record all commit together. And the nonce, no longer written first,
still refuses another body while its first callback is being handled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from bot.channels.wechat.fake_server import FakeWeChat
from bot.channels.wechat.tables import wechat_cs_quota, wechat_deliveries, wechat_nonces
from bot.engine.messages import Inbound
from bot.engine.store import OutboxStatus
from bot.engine.tables import outbox
from tests.channels.conftest import PATIENT, WeChatRig, _wechat_rig

OPENID = "oUser_0000000000000000000077"


@pytest.fixture
async def embedded(db_url: str, fake_wechat: tuple[FakeWeChat, str]) -> AsyncIterator[WeChatRig]:
    # WeChat's own budget: these tests count what an answer in time costs, on any machine
    async for rig in _wechat_rig(db_url, fake_wechat, embedded=True, **PATIENT):
        yield rig


async def count(rig: WeChatRig, table: sa.Table) -> int:
    async with rig.stack.store.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_a_message_answered_passively_is_one_write_transaction(embedded: WeChatRig) -> None:
    rig = embedded
    first = await rig.deliver(rig.server.text(OPENID, "菜单", msg_id=1))  # a new conversation
    assert rig.server.read_reply(first.text) is not None
    for n in range(2, 6):
        before = rig.stack.store.write_transactions
        response = await rig.deliver(rig.server.text(OPENID, "菜单", msg_id=n))
        assert rig.server.read_reply(response.text) is not None  # answered passively
        await rig.channel.drain_background()
        assert rig.stack.store.write_transactions - before == 1
    # and everything the edge keeps was written, in that one transaction each time
    assert await count(rig, wechat_nonces) == 5
    assert await count(rig, wechat_deliveries) == 5
    assert await count(rig, wechat_cs_quota) == 1
    async with rig.stack.store.engine.connect() as conn:
        statuses = (await conn.execute(sa.select(outbox.c.status))).scalars().all()
    assert set(statuses) == {OutboxStatus.PASSIVE}


async def test_a_retry_gets_the_recorded_answer_and_writes_no_second_nonce(embedded: WeChatRig) -> None:
    rig = embedded
    callback = rig.server.sign(rig.server.text(OPENID, "菜单", msg_id=42))
    first = await rig.client.post("/wechat", params=callback.query, content=callback.body)
    again = await rig.client.post("/wechat", params=callback.query, content=callback.body)
    first_reply, second_reply = rig.server.read_reply(first.text), rig.server.read_reply(again.text)
    assert first_reply is not None
    assert second_reply is not None
    assert first_reply["Content"] == second_reply["Content"]
    assert await count(rig, wechat_nonces) == 1


async def test_a_nonce_reused_with_another_body_during_the_first_handling_is_refused(
    embedded: WeChatRig,
) -> None:
    rig = embedded
    # the slow flow keeps the first callback in the engine past its passive budget
    first = rig.server.sign(rig.server.event(OPENID, "CLICK", "slow"), nonce="7777")
    forged = rig.server.text(OPENID, "forged")
    sent = asyncio.ensure_future(rig.client.post("/wechat", params=first.query, content=first.body))
    await asyncio.sleep(0.2)  # the first is being handled: its nonce is not in the table yet
    assert await count(rig, wechat_nonces) == 0
    refused = await rig.client.post("/wechat", params=first.query, content=forged.encode())
    assert refused.status_code == 403
    assert (await sent).status_code == 200
    await rig.channel.drain_background()
    assert await count(rig, wechat_nonces) == 1  # written with the slow message's commit
    # and after it, the database refuses the other body as before
    again = await rig.client.post("/wechat", params=first.query, content=forged.encode())
    assert again.status_code == 403


async def test_a_nonce_is_recorded_even_when_its_handling_fails(embedded: WeChatRig) -> None:
    rig = embedded

    def fail(_inbound: Inbound) -> None:
        raise RuntimeError("the handling broke before its commit")

    rig.stack.engine.hooks.on_inbound.append(fail)
    first = rig.server.sign(rig.server.text(OPENID, "菜单", msg_id=9), nonce="8888")
    response = await rig.client.post("/wechat", params=first.query, content=first.body)
    assert response.text == "success"  # logged; WeChat neither retries nor shows an error
    rig.stack.engine.hooks.on_inbound.remove(fail)
    assert await count(rig, wechat_nonces) == 1
    forged = rig.server.text(OPENID, "forged")
    replayed = await rig.client.post("/wechat", params=first.query, content=forged.encode())
    assert replayed.status_code == 403
