"""Scans are encrypted at rest in the bot's media store and the platform's blob store, in
private files; ``sealbot rotate-keys`` re-encrypts them and an interrupted rotation leaves
every file readable."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from bot.app import build_container, embedded_platform_services
from bot.core import answers_box
from bot.engine.media import LocalMediaStore
from bot.engine.secrets_box import SecretBox, is_sealed
from bot.engine.tables import conversations
from bot.key_rotation import rotate_keys
from bot.media_storage import media_keyring
from bot.settings import Settings
from bot.testing import ChatHarness, ManualClock, RecordingSender
from dbkit.engine import make_engine
from dbkit.envelope import Keyring, key_id_of
from seal_platform.accounts import Account
from seal_platform.field_crypto import left_to_rotate
from seal_platform.orders import Order
from seal_platform.services import PlatformServices
from tests.conversations.conftest import Service, service_settings
from tests.privacy.scans import noisy_png


def files_with(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_uploaded_scans_are_not_stored_in_clear_and_files_are_private(
    service: Service, tmp_path: Path
) -> None:
    scan = noisy_png()
    chat = service.chat
    await chat.upload(scan, "licence.png")  # a chat upload lands in the bot's media store
    platform = service.container.platform
    phone = "13800138501"
    await platform.accounts.send_sms_code(phone, "register")
    registration = await platform.accounts.register(phone, service.sms_code(phone, "register"), "seal2024ok")
    document = await platform.documents.upload(
        registration.session.token, "business_licence", scan, filename="licence.png"
    )
    assert await platform.documents.content(registration.session.token, document.id) == scan
    await service.container.stop()

    needle = scan[200:264]  # 64 bytes from inside the image data
    assert files_with(tmp_path, needle) == []
    media_root = tmp_path / "var" / "media"
    blob_root = tmp_path / "var" / "platform" / "blobs"
    stored = [p for root in (media_root, blob_root) for p in root.rglob("*") if p.is_file()]
    assert len(stored) >= 2
    for path in stored:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
        assert key_id_of(path.read_bytes()) is not None
    assert stat.S_IMODE(media_root.stat().st_mode) == 0o700


async def test_rotate_keys_re_encrypts_and_an_interrupted_run_leaves_everything_readable(
    tmp_path: Path,
) -> None:
    old = service_settings(tmp_path)
    old_store = LocalMediaStore(old.data_dir / "media", media_keyring(old))
    files = [noisy_png() + bytes([n]) for n in range(3)]
    refs = [
        await old_store.put(data, filename=f"s{n}.png", content_type="image/png")
        for n, data in enumerate(files)
    ]

    new = Settings(
        **{
            **old.model_dump(),
            "secret_key": SecretStr("the-new-secret-key-0123456789"),
            "old_secret_keys": SecretStr(old.secret_key.get_secret_value()),
        }
    )
    keyring = media_keyring(new)
    # "kill -9" after one file: only that file was replaced; all three still open
    first = old.data_dir / "media" / refs[0].media_id[:2] / refs[0].media_id
    interrupted = LocalMediaStore(old.data_dir / "media", keyring)
    await interrupted.backend.write(
        first.relative_to(interrupted.root).as_posix(), keyring.seal(files[0], refs[0].media_id.encode())
    )
    for ref, data in zip(refs, files, strict=True):
        assert await interrupted.get(ref.media_id) == data
    counts = await rotate_keys(new)
    assert counts["media"] == 2  # the rest, not the one done before the interruption
    assert (await rotate_keys(new))["media"] == 0
    # the old secret can go now
    only_new = LocalMediaStore(
        old.data_dir / "media", Keyring.from_secrets("the-new-secret-key-0123456789", purpose=b"media")
    )
    for ref, data in zip(refs, files, strict=True):
        assert await only_new.get(ref.media_id) == data
    assert not os.listdir(old.data_dir / "media" / refs[0].media_id[:2])[0].startswith(".")


async def test_chat_media_is_deleted_after_the_retention_period(service: Service) -> None:
    from datetime import timedelta

    from bot.app import media_retention_duty
    from scheduler.jobs import DutyRunner

    container = service.container
    old = await container.engine.media.put(noisy_png(1), filename="old.png", content_type="image/png")
    new = await container.engine.media.put(noisy_png(2), filename="new.png", content_type="image/png")
    root = container.settings.data_dir / "media"
    old_path = root / old.media_id[:2] / old.media_id
    stamp = (service.clock.now() - timedelta(days=31)).timestamp()
    os.utime(old_path, (stamp, stamp))
    duty = media_retention_duty(container)
    assert await DutyRunner(container.metrics).run(duty.name, duty.run) == 1.0
    assert not old_path.exists()
    assert await container.engine.media.get(new.media_id) == noisy_png(2)
    assert container.metrics.job("media_retention").last_result == 1.0


async def test_rotate_keys_re_encrypts_the_platform_fields_and_a_half_done_run_reads_throughout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(tmp_path)
    monkeypatch.setenv("PLATFORM_SECRET_KEY", "platform-old-secret-0123456789")
    addresses = [
        {"recipient": f"收件人{n}", "phone": f"1380013850{n}", "address": f"人民路 {n} 号"} for n in range(3)
    ]
    services = await embedded_platform_services(settings)
    try:
        await _orders_with(services, addresses)
    finally:
        await services.db.dispose()

    monkeypatch.setenv("PLATFORM_SECRET_KEY", "platform-new-secret-9876543210")
    monkeypatch.setenv("PLATFORM_OLD_SECRET_KEYS", "platform-old-secret-0123456789")
    services = await embedded_platform_services(settings)
    cipher = services.field_cipher
    try:
        async with services.db.engine.connect() as conn:
            assert await conn.run_sync(left_to_rotate, cipher) == 3
        # "kill -9" after the first value: only that one is under the new key; all still read.
        # The direct write is the rotation's own step, done by hand to stop it half-way.
        async with services.db.engine.begin() as conn:
            (first,) = (
                await conn.execute(sa.text("SELECT mailing_address FROM orders WHERE id = 'o0'"))
            ).one()
            plain = cipher.decrypt(first, context="orders.mailing_address")
            fresh = cipher.encrypt(plain, context="orders.mailing_address")
            await conn.execute(
                sa.text("UPDATE orders SET mailing_address = :v WHERE id = 'o0'"), {"v": fresh}
            )
        assert await _addresses(services) == addresses
    finally:
        await services.db.dispose()

    assert (await rotate_keys(settings))["platform_fields"] == 2  # the rest
    assert (await rotate_keys(settings))["platform_fields"] == 0
    monkeypatch.delenv("PLATFORM_OLD_SECRET_KEYS")  # the old secret can go now
    services = await embedded_platform_services(settings)
    try:
        assert await _addresses(services) == addresses
        async with services.db.engine.connect() as conn:
            stored = (await conn.execute(sa.text("SELECT mailing_address FROM orders"))).scalars().all()
        assert all(value.startswith(services.field_cipher.current_version + ":") for value in stored)
    finally:
        await services.db.dispose()


async def _orders_with(services: PlatformServices, addresses: list[dict[str, str]]) -> None:
    # Direct table writes, allowed here: this module tests the field cipher of these very
    # columns (key rotation), and needs only rows holding ciphertext, not an order's history.
    now = datetime(2026, 11, 30, tzinfo=UTC)
    async with services.db.session() as session:
        session.add(Account(id="a1", phone="13800138509", password_hash="x", created_at=now))
        await session.flush()
        for n, address in enumerate(addresses):
            session.add(
                Order(
                    id=f"o{n}",
                    account_id="a1",
                    type="enterprise_seal",
                    status="draft",
                    created_at=now,
                    updated_at=now,
                    mailing_address=address,
                )
            )


async def _addresses(services: PlatformServices) -> list[dict[str, str]]:
    async with services.db.session() as session:
        orders = (await session.execute(sa.select(Order).order_by(Order.id))).scalars().all()
    return [dict(o.mailing_address or {}) for o in orders]


async def test_rotate_keys_reseals_conversation_answers_and_a_half_done_run_reads_throughout(
    tmp_path: Path,
) -> None:
    old = service_settings(tmp_path)
    clock, sender = ManualClock(), RecordingSender(channel="test")
    container = await build_container(old, clock=clock, extra_senders={"test": sender})
    chat = ChatHarness(container.engine, container.dispatcher, sender, clock)
    for user in ("a", "b", "c"):
        await chat.say("登录", user=user)
        await chat.say("13800138511", user=user)  # a sensitive answer: sealed in the state
    await container.stop()

    new = Settings(
        **{
            **old.model_dump(),
            "secret_key": SecretStr("the-new-secret-key-0123456789"),
            "old_secret_keys": SecretStr(old.secret_key.get_secret_value()),
        }
    )
    box = answers_box(new)
    db = make_engine(new.database_url)
    try:
        # "kill -9" after the first conversation: only that state was resealed (the reseal's own
        # write, done by hand to stop it half-way)
        async with db.begin() as conn:
            first = (await conn.execute(sa.select(conversations).order_by(conversations.c.id))).first()
            assert first is not None
            fresh, count = box.reseal(first.state)
            assert count >= 1
            await conn.execute(
                sa.update(conversations).where(conversations.c.id == first.id).values(state=fresh)
            )
        assert all(sealed_values_open(state, box) for state in await states(db))
    finally:
        await db.dispose()

    counts = await rotate_keys(new)
    assert counts["sealed_answers"] >= 2  # the other two conversations
    assert (await rotate_keys(new))["sealed_answers"] == 0
    only_new = SecretBox("the-new-secret-key-0123456789")
    db = make_engine(new.database_url)
    try:
        for state in await states(db):
            assert sealed_values_open(state, only_new)
    finally:
        await db.dispose()


async def states(db: Any) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(sa.select(conversations.c.state))).scalars())


def sealed_values_open(value: Any, box: SecretBox) -> bool:
    """Every sealed value inside ``value`` opens with ``box`` (raises otherwise)."""
    if is_sealed(value):
        box.open(value)
        return True
    if isinstance(value, dict):
        return all(sealed_values_open(v, box) for v in value.values())
    if isinstance(value, list):
        return all(sealed_values_open(v, box) for v in value)
    return True
