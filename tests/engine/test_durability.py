"""State is durable, deliveries are exactly-once, sensitive answers are sealed at rest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from bot.engine.flow import FlowRegistry
from bot.engine.messages import Inbound
from bot.engine.tables import outbox
from bot.testing import ChatHarness
from tests.engine.conftest import LOCALES
from tests.engine.flows_for_tests import FORM
from tests.engine.transcript import ID_NUMBER, Lang, fill_form


def _db_file(db_url: str) -> Path:
    return Path(db_url.split("///", 1)[1])


async def _outbox_count(chat: ChatHarness) -> int:
    async with chat.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return int((await conn.execute(sa.select(sa.func.count()).select_from(outbox))).scalar_one())


async def test_restart_in_the_middle_of_a_form_keeps_every_answer(db_url: str, lang: Lang) -> None:
    first = await ChatHarness.create(flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[LOCALES])
    assert await fill_form(first, lang, until="id_number") == [lang.step(5, 7, lang.ask_id)]
    await first.close()  # the process goes away; only the database file remains

    second = await ChatHarness.create(
        flows=FlowRegistry([FORM]), db_url=db_url, catalog_dirs=[LOCALES], schema=False
    )
    try:
        # The new process continues exactly where the old one stopped, in the user's language.
        assert await second.say(ID_NUMBER) == [lang.step(6, 7, lang.ask_scan)]
        replies = await second.upload(b"\x89PNG\r\n\x1a\n" + b"1" * 50)
        summary = replies[-1]
        assert summary.startswith(lang.step(7, 7, lang.summary_title))
        # the owner checks the ID number in full; the stored copy is masked (test_summary_card)
        for answer in ("30", ID_NUMBER, lang.company):
            assert answer in summary
        assert ("张三" if lang.code == "zh-CN" else "Alice Zhang") in summary
        assert ("某某科技有限公司" if lang.code == "zh-CN" else "Acme Ltd") in summary
    finally:
        await second.close()


async def test_duplicate_delivery_has_one_effect_and_gets_the_same_reply(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="age")
    inbound = Inbound.text_message(chat.key("u1"), "tg-update-4711", "30", at=chat.clock.now())
    first = await chat.engine.handle(inbound)
    rows_after_first = await _outbox_count(chat)
    state_after_first = (await chat.store.get(chat.key("u1"))).state  # type: ignore[union-attr]

    again = await chat.engine.handle(inbound)

    assert [m.outbox_id for m in again] == [m.outbox_id for m in first]
    assert (
        [m.reply for m in again]
        == [m.reply for m in first]
        == [m.reply for m in first if m.reply.text == lang.step(5, 7, lang.ask_id)]
    )
    assert await _outbox_count(chat) == rows_after_first  # nothing new queued
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert row.state == state_after_first
    await chat.dispatcher.drain()
    assert [m.reply.text for m in chat.sender.sent].count(lang.step(5, 7, lang.ask_id)) == 1


async def test_duplicate_delivery_arriving_concurrently_is_handled_once(
    chat: ChatHarness, lang: Lang
) -> None:
    import asyncio

    await fill_form(chat, lang, until="age")
    inbound = Inbound.text_message(chat.key("u1"), "wx-msg-1", "30", at=chat.clock.now())
    rows_before = await _outbox_count(chat)
    first, second = await asyncio.gather(chat.engine.handle(inbound), chat.engine.handle(inbound))
    assert [m.outbox_id for m in first] == [m.outbox_id for m in second]
    assert await _outbox_count(chat) == rows_before + len(first)


async def test_sensitive_answer_is_sealed_at_rest_and_masked_in_the_inbound_log(
    chat: ChatHarness, db_url: str, lang: Lang
) -> None:
    await fill_form(chat, lang, until="scan")

    # Every table, every column, as the database file holds it: the ID number is nowhere.
    with sqlite3.connect(_db_file(db_url)) as raw:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert {"conversations", "inbound_receipts", "outbox"} <= set(tables)
        for table in tables:
            for row in raw.execute(f"SELECT * FROM {table}"):  # noqa: S608 - names from sqlite_master
                assert ID_NUMBER not in repr(row), f"ID number readable in {table}"
        state_json = raw.execute("SELECT state FROM conversations").fetchone()[0]
    assert f'"$sealed": "{chat.engine.box.current_id}:' in state_json  # the key id beside it

    # The engine itself still reads the answer back.
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert chat.engine.codec.load(row.state).run.answers["id_number"] == ID_NUMBER  # type: ignore[union-attr]

    log = await chat.store.inbound_log(chat.key("u1"), 50)
    id_entry = next(e for e in log if e["body"].get("text") == "******")
    assert id_entry["kind"] == "text"


async def test_id_and_phone_numbers_in_free_text_are_masked_in_the_inbound_log(
    chat: ChatHarness, lang: Lang
) -> None:
    await fill_form(chat, lang, until="name")
    await chat.say(f"{ID_NUMBER} 13812345678")
    log = await chat.store.inbound_log(chat.key("u1"), 50)
    assert log[-1]["body"]["text"] == "110*************2X 138******78"


async def test_sensitive_answer_of_a_flow_put_aside_stays_sealed(
    chat: ChatHarness, db_url: str, lang: Lang
) -> None:
    await fill_form(chat, lang, until="scan")
    await chat.say("菜单" if lang.code == "zh-CN" else "menu")  # the run moves into memory
    with sqlite3.connect(_db_file(db_url)) as raw:
        (state_json,) = raw.execute("SELECT state FROM conversations").fetchone()
    assert '"_paused"' in state_json
    assert ID_NUMBER not in state_json
    # Coming back, the answer is there to be used.
    replies = await chat.tap(lang.form)
    assert replies[-1] == lang.step(6, 7, lang.ask_scan)
    row = await chat.store.get(chat.key("u1"))
    assert row is not None
    assert chat.engine.codec.load(row.state).run.answers["id_number"] == ID_NUMBER  # type: ignore[union-attr]
