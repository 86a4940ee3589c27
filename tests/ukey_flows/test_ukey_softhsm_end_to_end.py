"""From the chat message to the UKey, on a real SoftHSM2 token: renewal writes the platform's new
certificate (pkcs11-tool reads it back), unlock makes 12345678 the PIN."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from seal_platform.companies import Company, legal_rep_id
from seal_platform.documents import DocumentKind, store_document
from seal_platform.seals import Seal, SealHolder, SealKind, issue_seal
from tests.ukey_bridge.support import SO_PIN, USER_PIN, ScriptedPrompt, SoftHsmToken
from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.world import Applicant, joined
from ukey_bridge.keys import certificate_template, key_pair_templates, read_public_key, seseal_template

pytestmark = pytest.mark.softhsm


async def seal_on_token(side: BridgeSide, applicant: Applicant, token: SoftHsmToken) -> dict[str, object]:
    """An active seal whose key is this token, with the key pair, certificate and SESeal the
    platform's CA made for it, as a production line would have written them."""
    seal = await side.world.active_seal(applicant)
    backend = token.backend()
    info = next(t for t in await backend.list_tokens() if t.serial == token.serial)
    session = await backend.open_session(info.slot_id, read_write=True)
    services = side.world.platform_services
    try:
        await session.login(USER_PIN)
        public_template, private_template = key_pair_templates(backend.key_profile, b"factory-key", "seal")
        pub, _ = await session.generate_key_pair(
            public_template, private_template, backend.key_profile.keygen
        )
        public_key = await read_public_key(session, pub)
        async with services.db.session() as db:
            row = await db.get(Seal, str(seal["id"]))
            assert row is not None
            company = await db.get(Company, row.company_id)
            assert company is not None
            holder = SealHolder(
                kind=SealKind(row.kind),
                company_name=company.name,
                uscc=company.uscc,
                legal_rep_name=company.legal_rep_name,
                legal_rep_id=legal_rep_id(services, company),
                seal_code=row.seal_code,
            )
            issued = await issue_seal(
                services, holder, public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo), 1
            )
            seseal = await store_document(
                db,
                services,
                account_id=row.account_id,
                kind=DocumentKind.SESEAL,
                data=issued.seseal_der,
                content_type="application/octet-stream",
                filename="seal.ses",
            )
            row.certificate_pem = issued.certificate_pem
            row.certificate_serial = issued.certificate_serial
            row.valid_to = side.world.now() + timedelta(days=30)
            row.seseal_document_id = seseal.id
            row.key_serial = token.serial
        cert_der = x509.load_pem_x509_certificate(issued.certificate_pem.encode()).public_bytes(Encoding.DER)
        await session.create_object(certificate_template(cert_der, b"factory-key", "seal"))
        await session.create_object(seseal_template(issued.seseal_der, b"factory-key"))
    finally:
        await session.close()
        await backend.close()
    await side.world.set_seal(str(seal["id"]), so_pin=SO_PIN)
    return {**seal, "certificate_serial": issued.certificate_serial}


async def test_renewal_from_chat_message_to_new_certificate_on_the_token(
    bridge_side: BridgeSide, softhsm: SoftHsmToken
) -> None:
    world = bridge_side.world
    applicant = await world.applicant()
    seal = await seal_on_token(bridge_side, applicant, softhsm)
    chat = world.chat
    await chat.say("续期")
    await chat.tap("1 年")
    await chat.tap("确认无误")
    order = await world.order_of_seal(applicant, str(seal["id"]), "renewal")
    await world.pay(applicant, order["id"])
    await bridge_side.until("ukey-bridge pair")
    prompt = ScriptedPrompt(pins=[USER_PIN])
    async with bridge_side.pc(softhsm.backend, prompt):
        said = await bridge_side.until("续期完成")
    assert "请在电脑上输入 UKey 密码" in said
    assert prompt.kinds() == ["user"], "the PIN was asked on the PC, once"
    renewed = await world.seal(applicant, str(seal["id"]))
    assert renewed["certificate_serial"] != seal["certificate_serial"]
    listed = softhsm.pkcs11_tool("--list-objects", "--type", "cert")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("Certificate Object") == 1, "the old certificate was removed"
    der = _only_certificate(softhsm)
    assert format(x509.load_der_x509_certificate(der).serial_number, "x") == renewed["certificate_serial"]
    order_after = (await world.api.get(f"/v1/orders/{order['id']}", headers=applicant.headers)).json()
    assert order_after["status"] == "completed"


async def test_unlock_from_chat_then_pkcs11_tool_logs_in_with_12345678(
    bridge_side: BridgeSide, softhsm: SoftHsmToken
) -> None:
    world = bridge_side.world
    applicant = await world.applicant()
    seal = await seal_on_token(bridge_side, applicant, softhsm)
    chat = world.chat
    await chat.say("unlock my key")
    await chat.tap("确认办理")
    order = await world.order_of_seal(applicant, str(seal["id"]), "unlock")
    await world.pay(applicant, order["id"])
    await bridge_side.until("ukey-bridge pair")
    async with bridge_side.pc(softhsm.backend, ScriptedPrompt(pins=[None])):
        said = await bridge_side.until("解锁完成")
    assert "12345678" in said
    assert any(o.token == f"@go:pin_change:{seal['id']}" for o in bridge_side.last_options())
    assert softhsm.pkcs11_tool("--login", "--pin", "12345678", "--list-objects").returncode == 0
    assert SO_PIN not in joined(chat.transcript())


def _only_certificate(token: SoftHsmToken) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cert.der"
        listed = token.pkcs11_tool("--list-objects", "--type", "cert")
        ids = [
            line.split(":", 1)[1].strip()
            for line in listed.stdout.splitlines()
            if line.strip().startswith("ID:")
        ]
        assert len(ids) == 1, listed.stdout
        done = token.pkcs11_tool("--read-object", "--type", "cert", "--id", ids[0], "--output-file", str(out))
        assert done.returncode == 0, done.stderr
        return out.read_bytes()
