"""Renewal, change, unlock and PIN change on a real SoftHSM2 token, through PyKCS11."""

from __future__ import annotations

import pytest
from cryptography import x509

from tests.ukey_bridge.support import (
    SO_PIN,
    USER_PIN,
    CALink,
    ScriptedPrompt,
    SmallCA,
    SoftHsmToken,
    object_labels,
    seed_credential,
    working_pairs,
)
from ukey_bridge import ck
from ukey_bridge.backend import KeyAlgorithm, KeyProfile
from ukey_bridge.jobs import Job, JobRunner
from ukey_bridge.keys import key_id_for_job
from ukey_bridge.protocol import JobType, Outcome

pytestmark = pytest.mark.softhsm


def renewal_job(token: SoftHsmToken, replaces: str, job_id: str = "job-renew-1") -> Job:
    return Job(
        job_id,
        JobType.RENEWAL,
        {
            "key_serial": token.serial,
            "order_id": "order-1",
            "subject": {
                "country_name": "CN",
                "organization_name": "测试有限公司",
                "common_name": "测试有限公司",
            },
            "replaces_cert_sha256": replaces,
        },
    )


async def test_renewal_replaces_old_certificate_key_and_seal_on_softhsm(
    softhsm: SoftHsmToken, ca: SmallCA
) -> None:
    old = await seed_credential(softhsm.backend(), softhsm.serial, ca)
    link = CALink(ca)
    prompt = ScriptedPrompt(pins=[USER_PIN])
    runner = JobRunner(softhsm.backend, prompt)

    report = await runner.run(renewal_job(softhsm, old.cert_sha256), link)

    assert report.outcome is Outcome.SUCCEEDED, report.message
    request = x509.load_der_x509_csr(link.csrs[0])
    assert request.is_signature_valid
    assert "测试有限公司" in request.subject.rfc4514_string()
    pairs = await working_pairs(softhsm.backend(), softhsm.serial, pin=USER_PIN)
    assert [p.key_id for p in pairs] == [key_id_for_job("job-renew-1")]
    assert pairs[0].cert_sha256 == report.data["new_certificate"]["sha256"]
    labels = await object_labels(softhsm.backend(), softhsm.serial, pin=USER_PIN)
    assert (ck.CKO_DATA, f"seseal-{key_id_for_job('job-renew-1').hex()}") in labels
    assert all(label != "seal" for _, label in labels), "the old objects are gone"

    listed = softhsm.pkcs11_tool("--list-objects", "--type", "cert")
    assert listed.returncode == 0, listed.stderr
    assert "sealbot-job-renew-1" in listed.stdout
    assert key_id_for_job("job-renew-1").hex() in listed.stdout


async def test_change_with_rsa_profile_writes_a_certificate_for_the_new_subject(
    softhsm: SoftHsmToken, ca: SmallCA
) -> None:
    profile = KeyProfile(algorithm=KeyAlgorithm.RSA, rsa_bits=2048)
    old = await seed_credential(softhsm.backend(profile), softhsm.serial, ca)
    link = CALink(ca)
    runner = JobRunner(lambda: softhsm.backend(profile), ScriptedPrompt(pins=[USER_PIN]))
    job = Job(
        "job-change-1",
        JobType.CHANGE,
        {
            "key_serial": softhsm.serial,
            "order_id": "order-2",
            "subject": {"country_name": "CN", "common_name": "新名称有限公司"},
            "replaces_cert_sha256": old.cert_sha256,
        },
    )

    report = await runner.run(job, link)

    assert report.outcome is Outcome.SUCCEEDED, report.message
    assert "新名称有限公司" in x509.load_der_x509_csr(link.csrs[0]).subject.rfc4514_string()
    pairs = await working_pairs(softhsm.backend(profile), softhsm.serial, pin=USER_PIN)
    assert [p.key_id for p in pairs] == [key_id_for_job("job-change-1")]


async def test_wrong_pin_on_softhsm_reports_wrong_pin_and_leaves_key_untouched(
    softhsm: SoftHsmToken, ca: SmallCA
) -> None:
    old = await seed_credential(softhsm.backend(), softhsm.serial, ca)
    runner = JobRunner(softhsm.backend, ScriptedPrompt(pins=["99999999"]))

    report = await runner.run(renewal_job(softhsm, old.cert_sha256), CALink(ca))

    assert report.outcome is Outcome.WRONG_PIN
    assert "密码不正确" in report.message
    pairs = await working_pairs(softhsm.backend(), softhsm.serial, pin=USER_PIN)
    assert [p.cert_sha256 for p in pairs] == [old.cert_sha256]


async def test_unlock_resets_pin_to_12345678_and_pkcs11_tool_logs_in_with_it(
    softhsm: SoftHsmToken, ca: SmallCA
) -> None:
    prompt = ScriptedPrompt(pins=[None])  # the person keeps 12345678 for now
    runner = JobRunner(softhsm.backend, prompt)
    job = Job("job-unlock-1", JobType.UNLOCK, {"key_serial": softhsm.serial, "so_pin": SO_PIN})

    report = await runner.run(job, CALink(ca))

    assert report.outcome is Outcome.SUCCEEDED, report.message
    assert report.data["pin_changed"] is False
    logged_in = softhsm.pkcs11_tool("--login", "--pin", "12345678", "--list-objects")
    assert logged_in.returncode == 0, logged_in.stderr
    refused = softhsm.pkcs11_tool("--login", "--pin", USER_PIN, "--list-objects")
    assert refused.returncode != 0


async def test_unlock_with_wrong_so_pin_is_reported_and_user_pin_unchanged(
    softhsm: SoftHsmToken, ca: SmallCA
) -> None:
    runner = JobRunner(softhsm.backend, ScriptedPrompt())
    job = Job("job-unlock-2", JobType.UNLOCK, {"key_serial": softhsm.serial, "so_pin": "00000000"})

    report = await runner.run(job, CALink(ca))

    assert report.outcome is Outcome.SO_PIN_REJECTED
    assert softhsm.pkcs11_tool("--login", "--pin", USER_PIN, "--list-objects").returncode == 0


async def test_unlock_then_new_pin_typed_on_pc_replaces_12345678(softhsm: SoftHsmToken, ca: SmallCA) -> None:
    runner = JobRunner(softhsm.backend, ScriptedPrompt(pins=["24682468"]))
    job = Job("job-unlock-3", JobType.UNLOCK, {"key_serial": softhsm.serial, "so_pin": SO_PIN})

    report = await runner.run(job, CALink(ca))

    assert report.outcome is Outcome.SUCCEEDED
    assert report.data["pin_changed"] is True
    assert softhsm.pkcs11_tool("--login", "--pin", "24682468", "--list-objects").returncode == 0


async def test_pin_change_on_softhsm(softhsm: SoftHsmToken, ca: SmallCA) -> None:
    prompt = ScriptedPrompt(pins=[USER_PIN, "13571357"])
    runner = JobRunner(softhsm.backend, prompt)
    job = Job("job-pin-1", JobType.PIN_CHANGE, {"key_serial": softhsm.serial})

    report = await runner.run(job, CALink(ca))

    assert report.outcome is Outcome.SUCCEEDED, report.message
    assert softhsm.pkcs11_tool("--login", "--pin", "13571357", "--list-objects").returncode == 0
    assert softhsm.pkcs11_tool("--login", "--pin", USER_PIN, "--list-objects").returncode != 0


async def test_wrong_serial_expected_reports_wrong_key(softhsm: SoftHsmToken, ca: SmallCA) -> None:
    runner = JobRunner(softhsm.backend, ScriptedPrompt(pins=[USER_PIN]))
    job = Job("job-pin-2", JobType.PIN_CHANGE, {"key_serial": "0000000000000000"})

    report = await runner.run(job, CALink(ca))

    assert report.outcome is Outcome.WRONG_KEY
    assert report.data["found_serials"] == [softhsm.serial]


async def test_read_key_info_lists_certificates_without_a_pin(softhsm: SoftHsmToken, ca: SmallCA) -> None:
    old = await seed_credential(softhsm.backend(), softhsm.serial, ca)
    prompt = ScriptedPrompt()
    runner = JobRunner(softhsm.backend, prompt)

    report = await runner.run(Job("job-info", JobType.READ_KEY_INFO, {}), CALink(ca))

    assert report.outcome is Outcome.SUCCEEDED
    assert report.data["token"]["serial"] == softhsm.serial
    assert [c["sha256"] for c in report.data["certificates"]] == [old.cert_sha256]
    assert prompt.requests == []
