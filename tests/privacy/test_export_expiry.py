"""The 导出我的信息 ZIP lives 24 hours (or the shorter ``SEALBOT_EXPORT_LINK_HOURS``), not as
long as other chat files: after that its download is refused and the file deleted, whether or
not anyone asked for it again; until then the web chat serves it only to its own browser."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from bot.app import build_container
from bot.channels.webchat.sessions import COOKIE, WebSession, WebSessions
from bot.core import media_retention_duty
from bot.engine.media import SharedMediaStore
from bot.engine.messages import FileRef, Inbound, ReplyKind
from bot.errors import MediaExpired
from bot.testing import ChatHarness, ManualClock, RecordingSender
from tests.conversations.conftest import Service, service_settings
from tests.privacy.test_my_data_chat import PHONE, log_in, registered


def shared_media(service: Service) -> SharedMediaStore:
    media = service.container.engine.media
    assert isinstance(media, SharedMediaStore)
    return media


async def exported(service: Service) -> FileRef:
    await service.chat.say("导出我的信息")
    await service.chat.say(service.sms_code(PHONE, "export_data"))
    files = [m.reply.file for m in service.chat.sender.sent if m.reply.kind == ReplyKind.FILE]
    assert len(files) == 1
    assert files[0] is not None
    return files[0]


async def stored(media: SharedMediaStore, media_id: str) -> bool:
    return await media.backend.exists(media.blobs.content_key(media_id))


async def test_the_export_zip_is_refused_and_deleted_24_hours_after_it_was_made(service: Service) -> None:
    await registered(service)
    await log_in(service, "u1")
    media = shared_media(service)
    scan = await media.put(b"%PDF-1.4 another chat file", filename="scan.pdf", content_type="application/pdf")
    file = await exported(service)
    assert any("24 小时内有效" in m.reply.text for m in service.chat.sender.sent)

    service.clock.advance(timedelta(hours=23, minutes=59))
    archive = zipfile.ZipFile(io.BytesIO(await media.get(file.media_id)))
    assert "data.json" in archive.namelist()

    service.clock.advance(timedelta(minutes=1))
    with pytest.raises(MediaExpired):
        await media.get(file.media_id)
    assert not await stored(media, file.media_id)
    # other chat files keep the store's own retention (30 days)
    assert await media.get(scan.media_id) == b"%PDF-1.4 another chat file"


async def test_housekeeping_deletes_an_expired_export_nobody_opened_and_counts_it(service: Service) -> None:
    await registered(service)
    await log_in(service, "u1")
    media = shared_media(service)
    file = await exported(service)
    duty = media_retention_duty(service.container)

    assert await duty.run() == 0.0
    assert await stored(media, file.media_id)
    service.clock.advance(timedelta(hours=24, seconds=1))
    assert await duty.run() == 1.0
    assert not await stored(media, file.media_id)
    assert not any(key.startswith("expiry/") for key in await media.backend.keys())


@pytest.fixture
async def one_hour_exports(tmp_path: Path) -> AsyncIterator[Service]:
    clock = ManualClock()
    sender = RecordingSender(channel="test")
    settings = service_settings(tmp_path).model_copy(update={"export_link_hours": 1})
    container = await build_container(settings, clock=clock, extra_senders={"test": sender})
    yield Service(container, ChatHarness(container.engine, container.dispatcher, sender, clock), clock)
    await container.stop()


async def test_the_web_chat_serves_the_export_only_to_its_browser_and_refuses_it_after_expiry(
    one_hour_exports: Service,
) -> None:
    service = one_hour_exports
    container = service.container
    sessions: WebSessions = container.webchat.sessions
    await registered(service)
    browser = sessions.new()
    count = 0

    async def say(session: WebSession, text: str) -> WebSession:
        nonlocal count
        count += 1
        before = await sessions.account_of(session)
        await container.engine.handle(
            Inbound.text_message(session.key, f"w:{count}", text, at=service.clock.now())
        )
        return await sessions.after_message(session, before)

    for text in ("登录", PHONE, "2"):
        browser = await say(browser, text)
    browser = await say(browser, service.sms_code(PHONE, "login"))
    assert await sessions.account_of(browser) is not None
    cookie = browser.cookie
    assert cookie is not None
    service.clock.advance(timedelta(minutes=2))  # past the SMS resend cooldown
    await say(browser, "导出我的信息")
    await say(browser, service.sms_code(PHONE, "export_data"))
    await service.settle()
    files = [m.reply.file for m in await container.store.delivered(browser.key, 0, 100) if m.reply.file]
    assert len(files) == 1
    assert files[0] is not None
    url = f"/chat/api/media/{files[0].media_id}?name=my-data.zip"

    app = FastAPI()
    container.webchat.attach(app)
    transport = httpx.ASGITransport(app=app)
    other = sessions.new()
    assert other.cookie is not None
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test", cookies={COOKIE: cookie}) as web,
        httpx.AsyncClient(
            transport=transport, base_url="http://test", cookies={COOKIE: other.cookie}
        ) as stranger,
    ):
        got = await web.get(url)
        assert got.status_code == 200
        assert "data.json" in zipfile.ZipFile(io.BytesIO(got.content)).namelist()
        assert (await stranger.get(url)).status_code == 404
        # the user keeps chatting (the login stays alive) while the hour runs out
        for _ in range(3):
            service.clock.advance(timedelta(minutes=20))
            await say(browser, "我的信息")
        expired = await web.get(url)
        assert expired.status_code == 410
        # the browser opened the link itself: a sentence in the chat's language, not JSON
        assert expired.headers["content-type"].startswith("text/plain")
        assert "下载链接已过期" in expired.text
        assert (await web.get(url)).status_code == 404  # deleted by the refusal
