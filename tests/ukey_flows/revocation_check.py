"""What a relying party sees: ``openssl verify -crl_check`` against the CRL the platform serves
at /ca/crl, and ``openssl ocsp`` on the answer of /ca/ocsp, at the test clock's time."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

import httpx

from seal_platform.seals import certificate_authority
from seal_platform.services import PlatformServices


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("openssl")
    assert tool is not None, "openssl is needed"
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False, timeout=60)  # noqa: S603


async def revocation_verdicts(
    api: httpx.AsyncClient, services: PlatformServices, certificate_pem: str, at: datetime
) -> tuple[str, str]:
    """(what openssl verify said, openssl ocsp's status word) for the certificate."""
    ca = await certificate_authority(services)
    crl = await api.get("/ca/crl")
    assert crl.status_code == 200
    assert crl.headers["content-type"] == "application/pkix-crl"
    attime = str(int(at.timestamp()))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "chain.pem").write_bytes(ca.chain_pem())
        (work / "issuer.pem").write_bytes(
            ca.chain_pem().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
        )
        (work / "cert.pem").write_text(certificate_pem)
        (work / "crl.der").write_bytes(crl.content)
        converted = _openssl(
            "crl", "-inform", "DER", "-in", str(work / "crl.der"), "-out", str(work / "crl.pem")
        )
        assert converted.returncode == 0, converted.stderr
        verify = _openssl(
            "verify", "-crl_check", "-attime", attime, "-CAfile", str(work / "chain.pem"),
            "-CRLfile", str(work / "crl.pem"), str(work / "cert.pem"),
        )  # fmt: skip
        request = _openssl(
            "ocsp", "-issuer", str(work / "issuer.pem"), "-cert", str(work / "cert.pem"),
            "-no_nonce", "-reqout", str(work / "req.der"),
        )  # fmt: skip
        assert request.returncode == 0, request.stderr
        answer = await api.post(
            "/ca/ocsp",
            content=(work / "req.der").read_bytes(),
            headers={"content-type": "application/ocsp-request"},
        )
        assert answer.headers["content-type"] == "application/ocsp-response"
        (work / "resp.der").write_bytes(answer.content)
        status = _openssl(
            "ocsp", "-respin", str(work / "resp.der"), "-issuer", str(work / "issuer.pem"),
            "-cert", str(work / "cert.pem"), "-CAfile", str(work / "chain.pem"), "-attime", attime,
            "-validity_period", str(10 * 365 * 86400),
        )  # fmt: skip
        assert "Response verify OK" in status.stderr + status.stdout, status.stderr + status.stdout
        word = status.stdout.split("cert.pem:", 1)[1].split()[0]
    return (verify.stdout + verify.stderr).strip(), word
