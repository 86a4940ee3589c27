"""Killing the bridge between any two steps of a renewal leaves a working key; a rerun finishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ukey_bridge.support import (
    USER_PIN,
    CALink,
    ScriptedPrompt,
    SmallCA,
    init_softhsm_token,
    object_labels,
    seed_credential,
    working_pairs,
)
from ukey_bridge import ck
from ukey_bridge.jobs import Job, JobRunner
from ukey_bridge.keys import key_id_for_job
from ukey_bridge.protocol import JobType, Outcome

pytestmark = pytest.mark.softhsm

JOB_ID = "job-interrupted"


class BridgeKilled(BaseException):
    """Stands for the process dying: nothing in the bridge catches it."""


def make_job(serial: str, replaces: str) -> Job:
    params = {
        "key_serial": serial,
        "order_id": "order-9",
        "subject": {"common_name": "续期测试"},
        "replaces_cert_sha256": replaces,
    }
    return Job(JOB_ID, JobType.RENEWAL, params)


async def record_steps(directory: Path, ca: SmallCA, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    token = init_softhsm_token(directory)
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    old = await seed_credential(token.backend(), token.serial, ca)
    steps: list[str] = []

    async def note(step: str) -> None:
        steps.append(step)

    runner = JobRunner(token.backend, ScriptedPrompt(pins=[USER_PIN]), step_hook=note)
    report = await runner.run(make_job(token.serial, old.cert_sha256), CALink(ca))
    assert report.outcome is Outcome.SUCCEEDED
    return steps


async def test_renewal_killed_after_every_step_keeps_a_working_pair_and_rerun_completes(
    tmp_path: Path, ca: SmallCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = await record_steps(tmp_path / "dry-run", ca, monkeypatch)
    assert steps[:4] == ["find_token", "pin", "login", "key_pair"]
    assert "remove_old_certificate" in steps
    assert len(steps) >= 10

    for k, step in enumerate(steps):
        token = init_softhsm_token(tmp_path / f"kill-after-{k}")
        monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
        old = await seed_credential(token.backend(), token.serial, ca)
        seen = 0

        async def kill_at_k(name: str, k: int = k) -> None:
            nonlocal seen
            seen += 1
            if seen == k + 1:
                raise BridgeKilled(name)

        link = CALink(ca)
        runner = JobRunner(token.backend, ScriptedPrompt(pins=[USER_PIN]), step_hook=kill_at_k)
        with pytest.raises(BridgeKilled):
            await runner.run(make_job(token.serial, old.cert_sha256), link)

        after_kill = await working_pairs(token.backend(), token.serial, pin=USER_PIN)
        assert after_kill, f"no working certificate after a kill after step {step!r}"

        rerun = JobRunner(token.backend, ScriptedPrompt(pins=[USER_PIN]))
        report = await rerun.run(make_job(token.serial, old.cert_sha256), link)
        assert report.outcome is Outcome.SUCCEEDED, f"rerun after {step!r}: {report.message}"

        final = await working_pairs(token.backend(), token.serial, pin=USER_PIN)
        assert [p.key_id for p in final] == [key_id_for_job(JOB_ID)], f"after {step!r}"
        labels = await object_labels(token.backend(), token.serial, pin=USER_PIN)
        classes = sorted(c for c, _ in labels)
        assert classes == sorted([ck.CKO_DATA, ck.CKO_CERTIFICATE, ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY]), (
            f"leftovers after {step!r}: {labels}"
        )
        # a rerun after the certificate was written does not ask the CA a second time
        if steps.index(step) >= steps.index("write_seal"):
            assert len(link.csrs) == 1, step
