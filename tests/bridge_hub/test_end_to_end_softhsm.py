"""Chat asks, PC pairs, bridge runs the job on a SoftHSM2 token, chat hears the outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from bot.bridge.ports import UpdateKind
from tests.bridge_hub.conftest import Service, running
from tests.ukey_bridge.support import USER_PIN, ScriptedPrompt, SoftHsmToken, seed_credential
from ukey_bridge.backoff import Backoff
from ukey_bridge.client import BridgeClient
from ukey_bridge.credential import CredentialStore, DeviceCredential
from ukey_bridge.jobs import JobRunner
from ukey_bridge.journal import JobJournal
from ukey_bridge.pairing import pair

pytestmark = pytest.mark.softhsm

ACCOUNT = "acct-1"


async def no_wait(_delay: float) -> None:
    await asyncio.sleep(0.05)


class RecordingConnector:
    def __init__(self) -> None:
        self.connections: list[ClientConnection] = []

    async def __call__(self, url: str) -> ClientConnection:
        connection = await connect(url)
        self.connections.append(connection)
        return connection


async def paired(service: Service, tmp_path: Path) -> DeviceCredential:
    code = await service.hub.create_pairing_code(ACCOUNT, conversation_ref="conv-1")
    credential = await pair(service.url, code.code.lower(), device_name="Office PC")
    CredentialStore(tmp_path / "bridge").save(credential)
    return credential


async def test_pair_then_renewal_end_to_end_writes_new_certificate_read_back_by_pkcs11_tool(
    service: Service, softhsm: SoftHsmToken, tmp_path: Path
) -> None:
    old = await seed_credential(softhsm.backend(), softhsm.serial, service.issuer.ca)
    credential = await paired(service, tmp_path)
    confirmed = await service.updates.wait_for(UpdateKind.PAIRED)
    assert confirmed.device_name == "Office PC"
    assert confirmed.conversation_ref == "conv-1"
    assert not await service.hub.is_online(ACCOUNT)

    prompt = ScriptedPrompt(pins=[USER_PIN])
    runner = JobRunner(softhsm.backend, prompt, journal=JobJournal(tmp_path / "bridge" / "jobs"))
    client = BridgeClient(credential, runner, sleep=no_wait)
    async with running(client):
        assert await service.hub.is_online(ACCOUNT)
        job_id = await service.hub.submit_job(
            ACCOUNT,
            "renewal",
            {
                "key_serial": softhsm.serial,
                "order_id": "order-77",
                "subject": {"country_name": "CN", "common_name": "示例科技有限公司"},
                "replaces_cert_sha256": old.cert_sha256,
            },
            "conv-1",
        )
        done = await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)

    assert done.outcome == "succeeded"
    assert service.issuer.calls == [(ACCOUNT, "order-77")]
    stages = [u.stage for u in service.updates.seen if u.job_id == job_id and u.stage]
    assert "awaiting_pin" in stages
    assert "awaiting_certificate" in stages
    listed = softhsm.pkcs11_tool("--list-objects", "--type", "cert")
    assert listed.returncode == 0, listed.stderr
    assert f"sealbot-{job_id}" in listed.stdout
    assert listed.stdout.count("Certificate Object") == 1
    view = await service.hub.get_job(ACCOUNT, job_id)
    assert view.status == "succeeded"


async def test_unlock_end_to_end_then_pkcs11_tool_logs_in_with_12345678(
    service: Service, softhsm: SoftHsmToken, tmp_path: Path
) -> None:
    credential = await paired(service, tmp_path)
    client = BridgeClient(credential, JobRunner(softhsm.backend, ScriptedPrompt(pins=[None])), sleep=no_wait)
    async with running(client):
        job_id = await service.hub.submit_job(
            ACCOUNT, "unlock", {"key_serial": softhsm.serial, "order_id": "order-unlock"}, "conv-1"
        )
        done = await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)
    assert done.data["pin_changed"] is False
    view = await service.hub.get_job(ACCOUNT, job_id)
    assert "so_pin" not in str(view.result), "the SO PIN is never stored with the job"
    assert softhsm.pkcs11_tool("--login", "--pin", "12345678", "--list-objects").returncode == 0


async def test_network_dropped_while_waiting_for_certificate_resumes_after_reconnect(
    service: Service, softhsm: SoftHsmToken, tmp_path: Path
) -> None:
    old = await seed_credential(softhsm.backend(), softhsm.serial, service.issuer.ca)
    credential = await paired(service, tmp_path)
    connector = RecordingConnector()
    real_issue = service.issuer.issue
    dropped = False

    async def drop_then_issue(account_id: str, order_id: str, csr_der: bytes):  # type: ignore[no-untyped-def]
        nonlocal dropped
        if not dropped:
            dropped = True
            await connector.connections[-1].close()  # the PC's network goes away
        return await real_issue(account_id, order_id, csr_der)

    service.issuer.issue = drop_then_issue  # type: ignore[method-assign]
    prompt = ScriptedPrompt(pins=[USER_PIN, USER_PIN])
    client = BridgeClient(
        credential,
        JobRunner(softhsm.backend, prompt),
        connector=connector,
        sleep=no_wait,
        backoff=Backoff(initial=0.01, maximum=0.05),
    )
    async with running(client):
        job_id = await service.hub.submit_job(
            ACCOUNT,
            "renewal",
            {
                "key_serial": softhsm.serial,
                "order_id": "o-8",
                "subject": {"common_name": "x"},
                "replaces_cert_sha256": old.cert_sha256,
            },
            "conv-1",
        )
        done = await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)

    assert dropped
    assert len(connector.connections) >= 2
    assert UpdateKind.JOB_FAILED not in service.updates.kinds(job_id)
    assert len(service.issuer.calls) == 1, "the rerun got the certificate issued before the drop"
    assert done.data["new_certificate"]["sha256"]
    listed = softhsm.pkcs11_tool("--list-objects", "--type", "cert")
    assert listed.stdout.count("Certificate Object") == 1
