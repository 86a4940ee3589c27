"""Bad and unusual Telegram input: refused with the right status or answered helpfully,
never a 500, never a change of conversation state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.channels.telegram.fake_server import FakeTelegram
from bot.engine.messages import ConversationKey
from tests.channels.conftest import TG_SECRET, TelegramRig

USER = 777002

Case = Callable[[FakeTelegram], Any]

CASES: list[tuple[str, Case, dict[str, Any]]] = [
    ("no secret header", lambda f: f.text_update(USER, "/start"), {"secret": None, "status": 403}),
    ("wrong secret header", lambda f: f.text_update(USER, "/start"), {"secret": "guess", "status": 403}),
    ("wrong webhook path", lambda f: f.text_update(USER, "/start"), {"path": "other", "status": 404}),
    ("malformed json", lambda f: b'{"update_id": 1, "message": ', {"raw": True, "status": 400}),
    ("non-utf8 body", lambda f: b"\xff\xfe\x00{", {"raw": True, "status": 400}),
    ("json array", lambda f: [1, 2, 3], {"status": 400}),
    ("oversized body", lambda f: {"update_id": 9, "pad": "x" * (2 * 1024 * 1024)}, {"status": 413}),
    ("update_id not a number", lambda f: {"update_id": "1", "message": {}}, {"status": 200}),
    ("update without content", lambda f: {"update_id": 77}, {"status": 200}),
    ("broken message structure", lambda f: {"update_id": 78, "message": {"chat": 5}}, {"status": 200}),
    ("edited message", lambda f: f.edited_update(USER, "new answer"), {"notice": "Edited messages"}),
    (
        "sticker",
        lambda f: f.update_with(
            USER,
            sticker={
                "file_id": "S1",
                "file_unique_id": "s1",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
        ),
        {"notice": "sticker"},
    ),
    (
        "voice",
        lambda f: f.update_with(USER, voice={"file_id": "V1", "file_unique_id": "v1", "duration": 3}),
        {"notice": "voice"},
    ),
    (
        "location",
        lambda f: f.update_with(USER, location={"latitude": 31.2, "longitude": 121.5}),
        {"notice": "location"},
    ),
    (
        "group chat message",
        lambda f: {
            "update_id": f.next_update_id(),
            "message": {**f.text_update(USER, "hi")["message"], "chat": {"id": -100, "type": "supergroup"}},
        },
        {"status": 200},
    ),
]


@pytest.mark.parametrize(("build", "expect"), [(b, e) for _, b, e in CASES], ids=[c[0] for c in CASES])
async def test_hostile_or_unusual_update_is_refused_or_answered_without_state_change(
    telegram: TelegramRig, build: Case, expect: dict[str, Any]
) -> None:
    fake = telegram.fake
    body = build(fake)
    headers: dict[str, str] = {}
    secret = expect.get("secret", TG_SECRET)
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    path = expect.get("path", "hook-path")
    if expect.get("raw"):
        response = await telegram.client.post(f"/telegram/{path}", content=body, headers=headers)
    else:
        response = await telegram.client.post(f"/telegram/{path}", content=json.dumps(body), headers=headers)
    await telegram.stack.dispatcher.drain()
    assert response.status_code == expect.get("status", 200)
    assert await telegram.stack.store.get(ConversationKey("telegram", fake.username, str(USER))) is None
    if "notice" in expect:
        (text,) = fake.sent_texts(USER)
        assert expect["notice"].lower() in text.lower()
    else:
        assert fake.calls_of("sendMessage") == []


async def test_album_photos_are_each_taken_as_an_upload(telegram: TelegramRig) -> None:
    fake = telegram.fake
    await telegram.post(fake.text_update(USER, "/form"))
    await telegram.post(fake.text_update(USER, "Li"))
    message_id, data = fake.button(USER, "Person")
    await telegram.post(fake.callback_update(USER, data, message_id=message_id))
    await telegram.post(fake.text_update(USER, "30"))
    await telegram.post(fake.text_update(USER, "110105194912310021"))
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 100
    assert await telegram.post(fake.photo_update(USER, png, media_group_id="album-1")) == 200
    assert len(fake.calls_of("getFile")) == 1
    row = await telegram.stack.store.get(ConversationKey("telegram", fake.username, str(USER)))
    assert row is not None
    assert row.state["run"]["answers"]["scan"][0]["content_type"] == "image/png"


async def test_file_over_the_limit_is_refused_with_a_clear_reply_before_download(
    telegram: TelegramRig,
) -> None:
    fake = telegram.fake
    big = b"%PDF-1.4\n" + b"0" * (80 * 1024)
    assert await telegram.post(fake.document_update(USER, big, "huge.pdf", "application/pdf")) == 200
    assert fake.calls_of("getFile") == []
    (text,) = fake.sent_texts(USER)
    assert "too large" in text
    assert "64 KB" in text
    assert telegram.stack.media.files == {}


async def test_notice_is_withheld_while_staff_own_the_conversation(telegram: TelegramRig) -> None:
    fake = telegram.fake
    await telegram.post(fake.text_update(USER, "/start"))
    await telegram.stack.engine.set_owner(
        ConversationKey("telegram", fake.username, str(USER)), "staff:alice"
    )
    await telegram.stack.dispatcher.drain()
    before = len(fake.calls_of("sendMessage"))
    await telegram.post(fake.update_with(USER, voice={"file_id": "V", "file_unique_id": "v", "duration": 1}))
    assert len(fake.calls_of("sendMessage")) == before
