"""Pairing codes, revocation, presence, job checks on the bridge, and jobs surviving restarts."""

from __future__ import annotations

import asyncio
import contextlib
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.bridge import protocol as server_wire
from bot.bridge.hub import CODE_ALPHABET, BridgeHub, NoBridgePaired
from bot.bridge.ports import UpdateKind
from tests.bridge_hub.conftest import FixedSoPins, Service
from tests.ukey_bridge.support import ScriptedPrompt
from ukey_bridge import cli
from ukey_bridge.client import BridgeClient, OfferChecker
from ukey_bridge.credential import CredentialStore, DeviceCredential
from ukey_bridge.errors import CredentialRevoked, PairingFailed
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import JobRunner
from ukey_bridge.pairing import pair
from ukey_bridge.protocol import JobOffer, RefusalReason, with_signature

ACCOUNT = "acct-7"


def fake_runner(pins: list[str | None]) -> tuple[JobRunner, FakeBackend]:
    backend = FakeBackend([FakeToken("UK7", "Seal", user_pin="135790", so_pin="SO-1")])
    return JobRunner(lambda: backend, ScriptedPrompt(pins=pins)), backend


async def test_pairing_code_is_eight_unambiguous_characters_valid_ten_minutes(service: Service) -> None:
    code = await service.hub.create_pairing_code(ACCOUNT)
    assert len(code.code) == 8
    assert set(code.code) <= set(CODE_ALPHABET)
    assert code.expires_at - service.clock.now == timedelta(minutes=10)


async def test_wrong_expired_and_reused_codes_are_refused_in_plain_words(service: Service) -> None:
    with pytest.raises(PairingFailed) as wrong:
        await pair(service.url, "ZZZZZZZZ")
    assert wrong.value.reason == "invalid_code"
    assert "not valid" in str(wrong.value)

    expiring = await service.hub.create_pairing_code(ACCOUNT)
    service.clock.now += timedelta(minutes=10, seconds=1)
    with pytest.raises(PairingFailed) as expired:
        await pair(service.url, expiring.code)
    assert expired.value.reason == "expired"
    assert "expired" in str(expired.value)

    fresh = await service.hub.create_pairing_code(ACCOUNT)
    await pair(service.url, fresh.code)
    with pytest.raises(PairingFailed) as reused:
        await pair(service.url, fresh.code)
    assert reused.value.reason == "used"


async def test_too_many_wrong_codes_from_one_address_blocks_even_a_good_code(service: Service) -> None:
    for _ in range(10):
        with pytest.raises(PairingFailed):
            await pair(service.url, "WRONGCDE")
    good = await service.hub.create_pairing_code(ACCOUNT)
    with pytest.raises(PairingFailed) as blocked:
        await pair(service.url, good.code)
    assert blocked.value.reason == "too_many_attempts"
    service.clock.now += timedelta(minutes=11)
    later = await service.hub.create_pairing_code(ACCOUNT)
    assert (await pair(service.url, later.code)).account_id == ACCOUNT


async def test_credential_file_is_owner_only(service: Service, tmp_path: Path) -> None:
    code = await service.hub.create_pairing_code(ACCOUNT)
    credential = await pair(service.url, code.code, device_name="Laptop")
    store = CredentialStore(tmp_path / "cfg")
    store.save(credential)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.load() == credential


async def test_revoked_bridge_is_refused_at_websocket_auth_and_stops(service: Service) -> None:
    code = await service.hub.create_pairing_code(ACCOUNT)
    credential = await pair(service.url, code.code, device_name="Old PC")
    runner, _ = fake_runner([])
    client = BridgeClient(credential, runner)
    task = asyncio.create_task(client.run_forever())
    await asyncio.wait_for(client.connected.wait(), 10)
    [device] = await service.hub.list_devices(ACCOUNT)
    assert device.online
    assert device.name == "Old PC"

    assert await service.hub.revoke_device(ACCOUNT, device.device_id)
    with pytest.raises(CredentialRevoked):
        await asyncio.wait_for(task, 10)
    assert not await service.hub.is_online(ACCOUNT)
    assert await service.hub.list_devices(ACCOUNT) == []
    await service.updates.wait_for(UpdateKind.REVOKED)


async def test_revoking_another_accounts_device_does_nothing(service: Service) -> None:
    code = await service.hub.create_pairing_code(ACCOUNT)
    credential = await pair(service.url, code.code)
    assert not await service.hub.revoke_device("someone-else", credential.device_id)
    assert len(await service.hub.list_devices(ACCOUNT)) == 1


async def test_submit_without_paired_bridge_is_refused(service: Service) -> None:
    with pytest.raises(NoBridgePaired):
        await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UK7"}, "conv")


def offer(credential: DeviceCredential, **changes: object) -> JobOffer:
    base = JobOffer(
        sig="",
        job_id="job-1",
        account_id=credential.account_id,
        device_id=credential.device_id,
        job_type="pin_change",
        params={"key_serial": "UK7"},
        nonce="n-1",
        issued_at=time.time(),
        attempt=1,
    )
    from dataclasses import replace

    from ukey_bridge.protocol import signing_key

    return with_signature(replace(base, **changes), signing_key(credential.secret))  # type: ignore[arg-type]


def sample_credential() -> DeviceCredential:
    return DeviceCredential("http://x", "dev-1", "acct-1", "secret-1", "PC", "2025-01-01")


def test_bridge_refuses_tampered_foreign_stale_and_replayed_jobs() -> None:
    credential = sample_credential()
    checker = OfferChecker(credential)
    good = offer(credential)
    assert checker.check(good) is None
    assert checker.check(good) is RefusalReason.REPLAYED

    from dataclasses import replace

    tampered = replace(offer(credential, nonce="n-2"), params={"key_serial": "OTHER"})
    assert checker.check(tampered) is RefusalReason.BAD_SIGNATURE
    assert checker.check(offer(credential, nonce="n-3", account_id="acct-2")) is RefusalReason.OTHER_ACCOUNT
    assert checker.check(offer(credential, nonce="n-4", device_id="dev-2")) is RefusalReason.OTHER_DEVICE
    assert checker.check(offer(credential, nonce="n-5", issued_at=time.time() - 3600)) is RefusalReason.STALE
    forged = offer(DeviceCredential("http://x", "dev-1", "acct-1", "other-secret", "PC", "x"), nonce="n-6")
    assert checker.check(forged) is RefusalReason.BAD_SIGNATURE


async def test_job_submitted_while_offline_is_persisted_and_runs_when_bridge_connects(
    service: Service, tmp_path: Path
) -> None:
    code = await service.hub.create_pairing_code(ACCOUNT)
    credential = await pair(service.url, code.code)
    job_id = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UK7"}, "conv-9")
    assert (await service.hub.get_job(ACCOUNT, job_id)).status == "pending"

    # a second hub over the same database (a restarted service) sees the queued job
    restarted = BridgeHub(
        service.db,
        issuer=service.issuer,
        so_pins=FixedSoPins(),
        on_job_update=service.updates,
        clock=service.clock,
    )
    assert (await restarted.get_job(ACCOUNT, job_id)).status == "pending"

    runner, backend = fake_runner(["000000"])
    client = BridgeClient(credential, runner)
    task = asyncio.create_task(client.run_forever())
    try:
        failed = await service.updates.wait_for(UpdateKind.JOB_FAILED, job_id)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert failed.outcome == "wrong_pin"
    assert failed.tries_left == 5
    assert "还剩 5 次机会" in (failed.message or ""), "the bridge speaks Chinese unless told otherwise"
    assert backend.tokens["UK7"].user_failures == 1


async def test_wrong_key_inserted_is_reported_to_chat(service: Service) -> None:
    code = await service.hub.create_pairing_code(ACCOUNT)
    credential = await pair(service.url, code.code)
    runner, _ = fake_runner(["135790", "246802"])
    client = BridgeClient(credential, runner)
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        job_id = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "NOT-THIS"}, "conv")
        failed = await service.updates.wait_for(UpdateKind.JOB_FAILED, job_id)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert failed.outcome == "wrong_key"
    assert failed.data["found_serials"] == ["UK7"]


def test_cli_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("pair", "run", "status", "unpair"):
        assert command in out


async def test_cli_pair_status_unpair_round_trip(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    for variable in ("UKEY_BRIDGE_LANG", "LC_ALL", "LANG"):
        monkeypatch.delenv(variable, raising=False)

    config = tmp_path / "cli-config"
    code = await service.hub.create_pairing_code(ACCOUNT, conversation_ref="conv-cli")
    out = io.StringIO()
    parser = cli.build_parser()
    rc = await cli.run_command(
        parser.parse_args(
            [
                "--config-dir",
                str(config),
                "--lang",
                "en",
                "pair",
                code.code,
                "--server",
                service.url,
                "--name",
                "Desk",
            ]
        ),
        out,
    )
    assert rc == 0
    assert "Paired" in out.getvalue()
    assert stat.S_IMODE((config / "credential.json").stat().st_mode) == 0o600

    out = io.StringIO()
    assert await cli.run_command(parser.parse_args(["--config-dir", str(config), "status"]), out) == 0
    assert "Desk" in out.getvalue()
    assert service.url in out.getvalue()
    assert "在线：否" in out.getvalue(), "status speaks Chinese by default"
    assert "配对：已配对" in out.getvalue()

    out = io.StringIO()
    english = parser.parse_args(["--config-dir", str(config), "--lang", "en", "status"])
    assert await cli.run_command(english, out) == 0
    assert "Online: no" in out.getvalue()

    out = io.StringIO()
    assert await cli.run_command(parser.parse_args(["--config-dir", str(config), "unpair"]), out) == 0
    assert not (config / "credential.json").exists()
    assert await service.hub.list_devices(ACCOUNT) == []


def test_server_and_bridge_sign_jobs_identically() -> None:
    key = server_wire.signing_key("s3cret")
    server_offer = server_wire.with_signature(
        server_wire.JobOffer(
            sig="",
            job_id="j",
            account_id="a",
            device_id="d",
            job_type="unlock",
            params={"key_serial": "K", "so_pin": "1"},
            nonce="n",
            issued_at=1.5,
            attempt=2,
        ),
        key,
    )
    from ukey_bridge.protocol import decode

    bridge_view = decode(server_offer.encode())
    assert isinstance(bridge_view, JobOffer)
    from ukey_bridge.protocol import signing_key

    assert bridge_view.signature_valid(signing_key("s3cret"))
