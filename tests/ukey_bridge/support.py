"""Test doubles shared by the bridge and hub tests: a small CA, a SoftHSM2 token, scripted prompts."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ukey_bridge import ck
from ukey_bridge.backend import KeyProfile, TokenBackend
from ukey_bridge.errors import PinEntryCancelled
from ukey_bridge.jobs import IssuedCertificate, Job, JobRunner
from ukey_bridge.keys import key_id_for_job, list_certificates
from ukey_bridge.pin_prompt import RESET_PIN, JobExplanation, PinKind, PinRequest
from ukey_bridge.pkcs11_backend import Pkcs11Backend, Pkcs11Config
from ukey_bridge.protocol import JobType, Stage

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "87654321"
USER_PIN = "11223344"


class TestSeal(core.Sequence):  # type: ignore[misc]
    """A stand-in with the outer shape of a SESeal (header id, the signer certificate)."""

    _fields: ClassVar = [("id", core.IA5String), ("esID", core.UTF8String), ("cert", core.OctetString)]


class SmallCA:
    """A real (small) CA: verifies a PKCS#10 request and issues a certificate for its key."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealbot test CA")])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.issued: list[x509.Certificate] = []

    def issue_for_key(self, public_key: Any, common_name: str, days: int = 365) -> bytes:
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=days))
            .sign(self.key, hashes.SHA256())
        )
        self.issued.append(cert)
        return cert.public_bytes(Encoding.DER)

    def issue_for_csr(self, csr_der: bytes) -> IssuedCertificate:
        request = x509.load_der_x509_csr(csr_der)
        if not request.is_signature_valid:
            raise ValueError("the request's signature is not valid")
        names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cert_der = self.issue_for_key(request.public_key(), str(names[0].value) if names else "seal")
        return IssuedCertificate(cert_der, make_seal(cert_der), self.pem())

    def pem(self) -> str:
        return self.certificate.public_bytes(Encoding.PEM).decode()


def make_seal(cert_der: bytes) -> bytes:
    es_id = hashlib.sha256(cert_der).hexdigest()[:16]
    return bytes(TestSeal({"id": "ES", "esID": es_id, "cert": cert_der}).dump())


@dataclass
class ScriptedPrompt:
    """Answers confirmations and PINs from a script; records what the PC was asked."""

    pins: list[str | None] = field(default_factory=list)
    confirm_answer: bool = True
    confirmations: list[JobExplanation] = field(default_factory=list)
    requests: list[PinRequest] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    async def confirm(self, explanation: JobExplanation) -> bool:
        self.confirmations.append(explanation)
        return self.confirm_answer

    async def ask_pin(self, request: PinRequest) -> str | None:
        self.requests.append(request)
        if not self.pins:
            raise PinEntryCancelled("the script has no more PINs")
        return self.pins.pop(0)

    async def notify(self, text: str) -> None:
        self.notices.append(text)

    def kinds(self) -> list[PinKind]:
        return [r.kind for r in self.requests]


@dataclass
class CALink:
    """A ServerLink that issues from a SmallCA in-process (the runner tests need no network)."""

    ca: SmallCA
    stages: list[tuple[str, Stage]] = field(default_factory=list)
    csrs: list[bytes] = field(default_factory=list)

    async def progress(self, job_id: str, stage: Stage, detail: dict[str, Any] | None = None) -> None:
        self.stages.append((job_id, stage))

    async def request_certificate(self, job_id: str, csr_der: bytes) -> IssuedCertificate:
        self.csrs.append(csr_der)
        return self.ca.issue_for_csr(csr_der)


@dataclass
class SoftHsmToken:
    conf: Path
    label: str
    serial: str
    module: str = SOFTHSM_MODULE

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def backend(self, profile: KeyProfile | None = None) -> Pkcs11Backend:
        return Pkcs11Backend(Pkcs11Config(self.module, profile or KeyProfile()))

    def pkcs11_tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        tool = shutil.which("pkcs11-tool")
        assert tool is not None, "OpenSC's pkcs11-tool is needed"
        return subprocess.run(  # noqa: S603 - fixed tool, test-controlled arguments
            [tool, "--module", self.module, "--token-label", self.label, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )


def init_softhsm_token(directory: Path, label: str = "SealKey") -> SoftHsmToken:
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    util = shutil.which("softhsm2-util")
    assert util is not None
    subprocess.run(  # noqa: S603
        [util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN],
        env=env,
        check=True,
        capture_output=True,
    )
    shown = subprocess.run([util, "--show-slots"], env=env, check=True, capture_output=True, text=True)  # noqa: S603
    serial = ""
    current_serial = ""
    for line in shown.stdout.splitlines():
        line = line.strip()
        if line.startswith("Serial number:"):
            current_serial = line.split(":", 1)[1].strip()
        if line.startswith("Label:") and line.split(":", 1)[1].strip() == label:
            serial = current_serial
    assert serial, shown.stdout
    return SoftHsmToken(conf, label, serial)


@dataclass(frozen=True)
class SeededCredential:
    key_id: bytes
    cert_der: bytes
    seal_der: bytes

    @property
    def cert_sha256(self) -> str:
        return hashlib.sha256(self.cert_der).hexdigest()


async def seed_credential(
    backend: TokenBackend, serial: str, ca: SmallCA, *, pin: str = USER_PIN, so_pin: str = SO_PIN
) -> SeededCredential:
    """The key as it leaves production, made by the product's own jobs: the station's
    production job (the token carries the job's label and SO PIN, so the job takes it as its
    own key and finishes it), then the holder's PIN change from the initial PIN to ``pin``."""
    token = next(t for t in await backend.list_tokens() if t.serial == serial)
    link = _RecordingCALink(ca)
    runner = JobRunner(lambda: backend, ScriptedPrompt(pins=[RESET_PIN, pin]))
    job_id = f"seed-{serial}"
    params = {"label": token.label, "so_pin": so_pin, "subject": {"common_name": "old seal"}}
    produced = await runner.run(Job(job_id, JobType.PRODUCE, params), link)
    assert produced.succeeded, produced.message
    if pin != RESET_PIN:
        changed = await runner.run(Job(f"{job_id}-pin", JobType.PIN_CHANGE, {"key_serial": serial}), link)
        assert changed.succeeded, changed.message
    (issued,) = link.issued
    return SeededCredential(key_id_for_job(job_id), issued.cert_der, issued.seseal_der)


@dataclass
class _RecordingCALink(CALink):
    issued: list[IssuedCertificate] = field(default_factory=list)

    async def request_certificate(self, job_id: str, csr_der: bytes) -> IssuedCertificate:
        issued = await super().request_certificate(job_id, csr_der)
        self.issued.append(issued)
        return issued


@dataclass(frozen=True)
class WorkingPair:
    key_id: bytes
    cert_sha256: str


async def working_pairs(backend: TokenBackend, serial: str, *, pin: str) -> list[WorkingPair]:
    """Certificates whose private key is on the token and signs something the certificate verifies."""
    token = next(t for t in await backend.list_tokens() if t.serial == serial)
    session = await backend.open_session(token.slot_id, read_write=False)
    pairs = []
    try:
        await session.login(pin)
        for cert in await list_certificates(session):
            keys = await session.find_objects({ck.CKA_CLASS: ck.CKO_PRIVATE_KEY, ck.CKA_ID: cert.key_id})
            if len(keys) != 1:
                continue
            public = cert.load().public_key()
            data = b"is this pair working?"
            if isinstance(public, ec.EllipticCurvePublicKey):
                from ukey_bridge.csr import ecdsa_raw_to_der

                raw = await session.sign(keys[0], hashlib.sha256(data).digest(), ck.CKM_ECDSA)
                public.verify(ecdsa_raw_to_der(raw), data, ec.ECDSA(hashes.SHA256()))
            elif isinstance(public, rsa.RSAPublicKey):
                signature = await session.sign(keys[0], data, ck.CKM_SHA256_RSA_PKCS)
                public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            pairs.append(WorkingPair(cert.key_id, cert.sha256))
    finally:
        await session.close()
        await backend.close()
    return pairs


async def object_labels(backend: TokenBackend, serial: str, *, pin: str) -> Sequence[tuple[int, str]]:
    token = next(t for t in await backend.list_tokens() if t.serial == serial)
    session = await backend.open_session(token.slot_id, read_write=False)
    try:
        await session.login(pin)
        out = []
        for handle in await session.find_objects({}):
            attributes = await session.get_attributes(handle, [ck.CKA_CLASS, ck.CKA_LABEL])
            out.append((int(attributes[ck.CKA_CLASS] or 0), str(attributes[ck.CKA_LABEL])))
        return sorted(out)
    finally:
        await session.close()
        await backend.close()
