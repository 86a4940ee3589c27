"""Scans are encrypted at rest in the bot's media store and the platform's blob store, in
private files; ``sealbot rotate-keys`` re-encrypts them and an interrupted rotation leaves
every file readable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import SecretStr

from bot.engine.media import LocalMediaStore
from bot.key_rotation import rotate_keys
from bot.media_storage import media_keyring
from bot.settings import Settings
from dbkit.envelope import Keyring, key_id_of
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
