"""The production station writes a new seal on a blank UKey: SoftHSM2 for the real PKCS#11
path (read back with OpenSC's pkcs11-tool), the in-memory token for what SoftHSM2 cannot do
(no blank key, a key that is not blank, a key pulled out mid-write)."""

from __future__ import annotations

import hashlib

import pytest

from seal_platform.production.station import KeyOrder, RunnerStation, StationFailed
from tests.softhsm_fixtures import SoftHsmStore, slots_shown
from tests.ukey_bridge.support import SmallCA
from ukey_bridge.fake_backend import FakeBackend, FakeToken
from ukey_bridge.jobs import IssuedCertificate

SO_PIN = "4815162342"
ORDER = KeyOrder(
    "produce-order-1-enterprise", "sealbot 0123456789ab", SO_PIN, {"common_name": "测试科技有限公司"}
)


class Certifier:
    """The platform's side of the job: certify every request the station sends."""

    def __init__(self) -> None:
        self.ca = SmallCA()
        self.issued: list[IssuedCertificate] = []

    async def __call__(self, csr_der: bytes) -> IssuedCertificate:
        issued = self.ca.issue_for_csr(csr_der)
        self.issued.append(issued)
        return issued


def blank_key(serial: str = "FAKE0001") -> FakeToken:
    return FakeToken(serial=serial, label="", user_pin="", so_pin="", initialised=False)


async def test_a_blank_softhsm2_token_gets_the_key_pair_certificate_and_seal_and_its_real_serial(
    softhsm_store: SoftHsmStore,
) -> None:
    certify = Certifier()
    produced = await RunnerStation(softhsm_store.backend).produce(ORDER, certify)

    (issued,) = certify.issued
    assert produced.certificate_sha256 == hashlib.sha256(issued.cert_der).hexdigest()
    assert produced.seseal_sha256 == hashlib.sha256(issued.seseal_der).hexdigest()
    # the serial is the one SoftHSM2 gave the token, as its own tool lists it
    assert len(produced.key_serial) <= 16
    assert f"Serial number:    {produced.key_serial}" in slots_shown(softhsm_store)
    token = softhsm_store.token(produced.key_serial, ORDER.label)
    listed = token.pkcs11_tool("--login", "--pin", "12345678", "--list-objects")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("Private Key Object") == 1
    assert listed.stdout.count("Certificate Object") == 1
    assert "sealbot SESeal" in listed.stdout
    # the private key was made on the token and cannot leave it
    assert "never extractable" in listed.stdout
    # the SO PIN the platform generated is the key's: it can reset the user PIN
    so_login = token.pkcs11_tool(
        "--login", "--login-type", "so", "--so-pin", SO_PIN, "--init-pin", "--new-pin", "12345678"
    )
    assert so_login.returncode == 0, so_login.stderr


async def test_a_rerun_of_the_same_job_resumes_the_key_it_initialised() -> None:
    key = blank_key()
    backend = FakeBackend([key])
    backend.pull_out_at("create_object")
    station = RunnerStation(lambda: backend)
    with pytest.raises(StationFailed) as removed:
        await station.produce(ORDER, Certifier())
    assert removed.value.code == "station_key_removed"
    # put back: it is no longer blank, but it carries this job's label and SO PIN
    backend.removal_trigger = None
    backend.insert(key)
    certify = Certifier()
    produced = await station.produce(ORDER, certify)
    assert produced.key_serial == "FAKE0001"
    assert produced.certificate_sha256 == hashlib.sha256(certify.issued[-1].cert_der).hexdigest()
    assert len([o for o in key.objects.values() if o.get(0x0) == 0x1]) == 1  # one certificate


async def test_no_key_and_a_key_that_is_not_blank_are_refused_with_their_own_codes() -> None:
    with pytest.raises(StationFailed) as none:
        await RunnerStation(FakeBackend).produce(ORDER, Certifier())
    assert none.value.code == "station_no_blank_key"

    used = FakeToken(serial="USED0001", label="someone's seal", user_pin="11223344", so_pin="99999999")
    with pytest.raises(StationFailed) as not_blank:
        await RunnerStation(lambda: FakeBackend([used])).produce(ORDER, Certifier())
    assert not_blank.value.code == "station_key_not_blank"
    assert used.label == "someone's seal"
    assert used.objects == {}


async def test_a_key_with_the_jobs_label_but_another_so_pin_is_not_taken_over() -> None:
    impostor = FakeToken(serial="OTHER001", label=ORDER.label, user_pin="11223344", so_pin="00000000")
    with pytest.raises(StationFailed) as refused:
        await RunnerStation(lambda: FakeBackend([impostor])).produce(ORDER, Certifier())
    assert refused.value.code == "station_key_not_blank"
    assert impostor.objects == {}


def test_production_mode_refuses_the_simulated_station() -> None:
    from pydantic import SecretStr

    from seal_platform.settings import PlatformSettings

    def settings(station: str) -> PlatformSettings:
        return PlatformSettings(
            production=True,
            service_key=SecretStr("a-real-service-key"),
            secret_key=SecretStr("a-real-secret-key"),
            invoice_seller_tax_number="91110000600037341L",
            production_station=station,
        )

    def station_refusals(station: str) -> list[str]:
        return [
            line
            for line in settings(station).production_problems()
            if line.startswith("PLATFORM_PRODUCTION_STATION:")
        ]

    assert station_refusals("demo") == [
        "PLATFORM_PRODUCTION_STATION: demo simulates the UKey; use remote (or local) in production"
    ]
    assert station_refusals("remote") == []


async def test_every_step_is_reported_as_it_starts_in_order_and_a_removal_stops_at_the_write() -> None:
    steps: list[str] = []
    await RunnerStation(lambda: FakeBackend([blank_key()])).produce(ORDER, Certifier(), steps.append)
    assert steps == ["init_token", "generate_key", "certify", "write", "verify"]

    backend = FakeBackend([blank_key("FAKE0002")])
    backend.pull_out_at("create_object")
    stopped: list[str] = []
    with pytest.raises(StationFailed):
        await RunnerStation(lambda: backend).produce(ORDER, Certifier(), stopped.append)
    assert stopped == ["init_token", "generate_key", "certify", "write"], "no read-back after a failed write"
