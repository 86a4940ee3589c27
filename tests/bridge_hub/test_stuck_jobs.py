"""Bridge jobs that never get stuck: a job leaves an unpaired PC for another, a PC that drops
mid-job is told to the chat and 重试 hands the job to a PC that is online, an SO PIN the
platform will not release fails that one job, an error while serving a frame keeps the
connection, a PC whose key was pulled out gives the job up to the PC that has it on 重试, and a
second `ukey-bridge run` on the same pairing says so and exits."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from bot.bridge.ports import UpdateKind
from tests.bridge_hub.conftest import Service, running
from tests.ukey_bridge.support import ScriptedPrompt
from ukey_bridge import cli
from ukey_bridge.client import BridgeClient
from ukey_bridge.credential import CredentialStore, DeviceCredential
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import JobRunner
from ukey_bridge.pairing import pair
from ukey_bridge.pin_prompt import JobExplanation
from ukey_bridge.single_run import only_run

ACCOUNT = "acct-stuck"
PIN = "135790"


class HangingPrompt(ScriptedPrompt):
    """A PC where nobody answers the confirmation: the job stays with that PC."""

    async def confirm(self, explanation: JobExplanation) -> bool:
        self.confirmations.append(explanation)
        await asyncio.Event().wait()
        return False


def key() -> FakeBackend:
    return FakeBackend([FakeToken("UKS1", "Seal", user_pin=PIN, so_pin="SO-1")])


async def paired_pc(service: Service, name: str) -> DeviceCredential:
    return await pair(
        service.url,
        (await service.hub.create_pairing_code(ACCOUNT, conversation_ref="c")).code,
        device_name=name,
    )


def online(
    credential: DeviceCredential, runner: JobRunner, serials: list[str] | None = None
) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """The PC's bridge connected; with ``serials`` it reports those UKeys, often, so a key
    put in shows quickly."""

    async def inserted() -> list[str]:
        return list(serials or [])

    reports = inserted if serials is not None else None
    return running(BridgeClient(credential, runner, token_serials=reports, heartbeat_seconds=0.05))


async def test_a_job_of_a_pc_that_is_unpaired_goes_to_the_accounts_other_pc(service: Service) -> None:
    first, second = await paired_pc(service, "PC-A"), await paired_pc(service, "PC-B")
    backend = key()
    async with online(first, JobRunner(lambda: backend, HangingPrompt())):
        job_id = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UKS1"}, "c")
        started = await service.updates.wait_for(UpdateKind.JOB_STARTED, job_id)
        assert started.device_id == first.device_id
        assert await service.hub.revoke_device(ACCOUNT, first.device_id)
    assert (await service.hub.get_job(ACCOUNT, job_id)).status == "pending"
    async with online(second, JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "246802"]))):
        done = await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)
    assert done.device_id == second.device_id
    assert backend.tokens["UKS1"].user_pin == "246802"


async def test_a_pc_dropping_mid_job_is_told_and_retry_hands_the_job_to_an_online_pc(
    service: Service,
) -> None:
    first, second = await paired_pc(service, "PC-A"), await paired_pc(service, "PC-B")
    backend = key()
    async with online(first, JobRunner(lambda: backend, HangingPrompt())):
        job_id = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UKS1"}, "c")
        await service.updates.wait_for(UpdateKind.JOB_STAGE, job_id)
    # PC-A is gone mid-job: the chat hears it
    interrupted = await service.updates.wait_for(UpdateKind.JOB_INTERRUPTED, job_id)
    assert interrupted.outcome == "connection_lost"
    async with online(second, JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "246802"]))):
        await service.hub.retry_job(ACCOUNT, job_id)  # 重试
        done = await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)
    assert done.device_id == second.device_id


async def test_an_so_pin_the_platform_refuses_fails_that_job_and_the_pc_stays_online(
    service: Service,
) -> None:
    credential = await paired_pc(service, "PC-A")
    service.so_pins.refusal = "the order is not paid"
    unlock = await service.hub.submit_job(ACCOUNT, "unlock", {"key_serial": "UKS1", "order_id": "o-1"}, "c")
    backend = key()
    client = BridgeClient(credential, JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "246802"])))
    async with running(client):
        failed = await service.updates.wait_for(UpdateKind.JOB_FAILED, unlock)
        assert failed.outcome == "so_pin_rejected"
        change = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UKS1"}, "c")
        await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, change)
        assert client.connected.is_set()
    assert [u.kind for u in service.updates.seen].count(UpdateKind.ONLINE) == 1, "never reconnected"


async def test_an_error_while_serving_a_frame_keeps_the_connection(service: Service) -> None:
    credential = await paired_pc(service, "PC-A")
    service.updates.fail_once_on = UpdateKind.JOB_STAGE
    backend = key()
    async with online(credential, JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "246802"]))):
        job_id = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UKS1"}, "c")
        await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)
    assert [u.kind for u in service.updates.seen].count(UpdateKind.ONLINE) == 1, "never reconnected"


def test_a_second_run_with_the_same_pairing_says_so_and_exits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = CredentialStore(tmp_path / "bridge")
    store.save(DeviceCredential("http://127.0.0.1:9", "dev-1", ACCOUNT, "secret", "PC", "2026-01-01"))
    with only_run(store.config_dir):
        code = cli.main(
            ["--config-dir", str(store.config_dir), "run", "--module", "/usr/lib/softhsm/libsofthsm2.so"]
        )
    assert code == 4
    assert "本机已经有一个 ukey-bridge 在用这个配对运行" in capsys.readouterr().out


async def test_with_two_pcs_the_job_goes_to_the_one_that_has_the_seals_key(service: Service) -> None:
    first, second = await paired_pc(service, "PC-A"), await paired_pc(service, "PC-B")
    backend = key()
    async with (
        online(first, JobRunner(lambda: backend, HangingPrompt()), ["OTHER-KEY"]),
        online(second, JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "246802"])), ["UKS1"]),
    ):
        await asyncio.sleep(0.2)  # both have reported their keys
        job_id = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UKS1"}, "c")
        done = await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)
    assert done.device_id == second.device_id


async def test_a_job_waits_while_no_online_pc_has_the_key_and_goes_when_it_is_inserted(
    service: Service,
) -> None:
    credential = await paired_pc(service, "PC-A")
    inserted: list[str] = []

    async def serials() -> list[str]:
        return list(inserted)

    backend = key()
    client = BridgeClient(
        credential,
        JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "246802"])),
        token_serials=serials,
        heartbeat_seconds=0.05,
    )
    async with running(client):
        await asyncio.sleep(0.2)
        job_id = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UKS1"}, "c")
        await asyncio.sleep(0.3)
        assert (await service.hub.get_job(ACCOUNT, job_id)).status == "pending", "no PC has the key yet"
        inserted.append("UKS1")
        done = await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)
    assert done.device_id == credential.device_id


async def test_a_pc_whose_key_was_pulled_reports_no_key_and_retry_goes_to_the_pc_that_has_it(
    service: Service,
) -> None:
    """PC-A reported the key, then it was pulled out and put into PC-B: A's job ends with
    no_key, A's next report lacks the key, and 重试 sends the job to B, not to A again."""
    first, second = await paired_pc(service, "PC-A"), await paired_pc(service, "PC-B")
    backend = key()
    pulled = FakeBackend([])
    in_first, in_second = ["UKS1"], []

    async def first_reports() -> list[str]:
        return list(in_first)

    async def second_reports() -> list[str]:
        return list(in_second)

    def first_backend() -> FakeBackend:
        in_first.clear()  # gone by the time the job looks: the next report says so
        in_second.append("UKS1")
        return pulled

    async with (
        running(
            BridgeClient(
                first,
                JobRunner(first_backend, ScriptedPrompt(pins=[PIN, "246802"])),
                token_serials=first_reports,
                heartbeat_seconds=0.05,
            )
        ),
        running(
            BridgeClient(
                second,
                JobRunner(lambda: backend, ScriptedPrompt(pins=[PIN, "246802"])),
                token_serials=second_reports,
                heartbeat_seconds=0.05,
            )
        ),
    ):
        await asyncio.sleep(0.2)
        job_id = await service.hub.submit_job(ACCOUNT, "pin_change", {"key_serial": "UKS1"}, "c")
        failed = await service.updates.wait_for(UpdateKind.JOB_FAILED, job_id)
        assert failed.device_id == first.device_id
        assert failed.outcome == "no_key"
        await asyncio.sleep(0.3)  # both PCs report what they hold now
        await service.hub.retry_job(ACCOUNT, job_id)
        done = await service.updates.wait_for(UpdateKind.JOB_SUCCEEDED, job_id)
    assert done.device_id == second.device_id
    assert backend.tokens["UKS1"].user_pin == "246802"
