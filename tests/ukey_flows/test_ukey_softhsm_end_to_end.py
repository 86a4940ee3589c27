"""The UKey's life on real SoftHSM2 tokens, through the product only (no database edits): a
seal is applied for, paid, approved, produced at the station on a blank token and shipped; the
user's own bridge then finds that very token for renewal (the shared clock moved into the
60-day window), PIN change, unlock (pkcs11-tool logs in with 12345678 again) and change; a
lost-key reissue is produced onto a second blank token."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.fixtures.seals import ADDRESS, png_bytes
from tests.softhsm_fixtures import SoftHsmStore, slots_shown
from tests.ukey_bridge.support import ScriptedPrompt, SoftHsmToken
from tests.ukey_flows.conftest import BridgeSide
from tests.ukey_flows.revocation_check import revocation_verdicts
from tests.ukey_flows.world import joined

pytestmark = pytest.mark.softhsm

INITIAL_PIN = "12345678"


def _label_of(store: SoftHsmStore, serial: str) -> str:
    """The token's label as SoftHSM2 lists it, so pkcs11-tool can address that token."""
    label, current = "", ""
    for line in slots_shown(store).splitlines():
        line = line.strip()
        if line.startswith("Serial number:"):
            current = line.split(":", 1)[1].strip()
        if line.startswith("Label:") and current == serial:
            label = line.split(":", 1)[1].strip()
    assert label, f"SoftHSM2 lists no token {serial}"
    return label


def _token(store: SoftHsmStore, serial: str) -> SoftHsmToken:
    return store.token(serial, _label_of(store, serial))


def _pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()


async def _verdicts(side: BridgeSide, der: bytes) -> tuple[str, str]:
    world = side.world
    return await revocation_verdicts(world.api, world.platform_services, _pem(der), world.now())


async def _revoked(side: BridgeSide, der: bytes) -> bool:
    """Revoked for both a CRL check and OCSP."""
    verify, ocsp = await _verdicts(side, der)
    return "certificate revoked" in verify and ocsp == "revoked"


async def _good(side: BridgeSide, der: bytes) -> bool:
    verify, ocsp = await _verdicts(side, der)
    return verify.endswith("cert.pem: OK") and ocsp == "good"


async def test_a_seal_from_the_production_station_lives_on_its_token_through_every_ukey_process(
    bridge_side: BridgeSide, softhsm_store: SoftHsmStore
) -> None:
    world = bridge_side.world
    chat = world.chat
    world.install_station(softhsm_store.backend)
    applicant = await world.applicant()

    # apply, pay, approve, produce at the station on a blank token, ship
    seal = await world.active_seal(applicant)
    seal_id = str(seal["id"])
    key_serial = str(seal["key_serial"])
    assert len(key_serial) <= 16
    assert f"Serial number:    {key_serial}" in slots_shown(softhsm_store)
    first_key = _token(softhsm_store, key_serial)
    produced_cert = _only_certificate(first_key, pin=INITIAL_PIN)
    assert (
        format(x509.load_der_x509_certificate(produced_cert).serial_number, "x") == seal["certificate_serial"]
    )
    assert (await _verdicts(bridge_side, produced_cert))[1] == "good"

    # renewal: the clock moves into the 60-day window; the user's PC holds the produced token
    valid_to = datetime.fromisoformat(str(seal["valid_to"]))
    applicant = await world.advance(valid_to - world.now() - timedelta(days=30), applicant)
    await chat.say("续期")
    summary = joined(await chat.tap("1 年"))
    # the confirmation shows the new end date: a year after the old one, not after today
    assert f"有效期至 {valid_to.year + 1}-{valid_to:%m-%d}" in summary
    await chat.tap("确认无误")
    renewal = await world.order_of_seal(applicant, seal_id, "renewal")
    await world.pay(applicant, renewal["id"])
    await bridge_side.until("ukey-bridge pair")
    prompt = ScriptedPrompt(pins=[INITIAL_PIN])
    async with bridge_side.pc(softhsm_store.backend, prompt):
        said = await bridge_side.until("续期完成")
        assert "请在电脑上输入 UKey 密码" in said
        assert prompt.kinds() == ["user"], "the PIN was asked on the PC, once"
        renewed = await world.seal(applicant, seal_id)
        assert renewed["key_serial"] == key_serial
        assert renewed["certificate_serial"] != seal["certificate_serial"]
        # renewed 30 days early: the year is added to the old end date, not to today
        assert renewed["valid_to"] == valid_to.replace(year=valid_to.year + 1).isoformat().replace(
            "+00:00", "Z"
        )
        listed = first_key.pkcs11_tool("--list-objects", "--type", "cert")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.count("Certificate Object") == 1, "the old certificate was removed"
        renewed_cert = _only_certificate(first_key)
        assert (
            format(x509.load_der_x509_certificate(renewed_cert).serial_number, "x")
            == renewed["certificate_serial"]
        )
        # the replaced certificate is revoked in the CRL and by OCSP, the new one is good
        assert await _revoked(bridge_side, produced_cert) is True
        assert await _good(bridge_side, renewed_cert) is True
        order_after = (await world.api.get(f"/v1/orders/{renewal['id']}", headers=applicant.headers)).json()
        assert order_after["status"] == "completed"

        # PIN change, then unlock: the PIN is back to 12345678
        before = len(chat.transcript())
        prompt.pins.extend([INITIAL_PIN, "24681357"])
        await chat.say("改ukey密码")
        await bridge_side.until("UKey 密码已修改", since=before)
        assert first_key.pkcs11_tool("--login", "--pin", INITIAL_PIN, "--list-objects").returncode != 0
        before = len(chat.transcript())
        await chat.say("unlock my key")
        await chat.tap("确认办理")
        unlock = await world.order_of_seal(applicant, seal_id, "unlock")
        prompt.pins.append(None)
        await world.pay(applicant, unlock["id"])
        said = await bridge_side.until("解锁完成", since=before)
        assert INITIAL_PIN in said
        assert first_key.pkcs11_tool("--login", "--pin", INITIAL_PIN, "--list-objects").returncode == 0

        # change: reviewed, then the new certificate and seal are written by the user's bridge
        before = len(chat.transcript())
        await chat.say("印章变更")
        await chat.tap("公司名称")
        await chat.say("北京新示例科技有限公司")
        await chat.upload(png_bytes(), "licence.png")
        await chat.upload(png_bytes(), "form.png")
        await chat.tap("确认无误")
        change = await world.order_of_seal(applicant, seal_id, "change")
        await world.pay(applicant, change["id"])
        prompt.pins.append(INITIAL_PIN)
        await world.staff(f"/orders/{change['id']}/approve")
        await bridge_side.until("变更完成", since=before)
        changed = await world.seal(applicant, seal_id)
        assert changed["valid_to"] == renewed["valid_to"], "a change keeps the end date"
        changed_cert = _only_certificate(first_key)
        assert (
            format(x509.load_der_x509_certificate(changed_cert).serial_number, "x")
            == changed["certificate_serial"]
        )
        assert (await _verdicts(bridge_side, renewed_cert))[1] == "revoked"
        assert await _good(bridge_side, changed_cert) is True

    # lost key: a reissue is produced at the station onto a second blank token
    await chat.say("补办")
    await chat.say("王五")
    await chat.say("13800138000")
    await chat.say("广东省 广州市 天河区")
    await chat.say("天河路 100 号 20 楼")
    await chat.tap("确认无误")
    reissue = await world.order_of_seal(applicant, seal_id, "reissue")
    await world.pay(applicant, reissue["id"])
    await world.staff(f"/orders/{reissue['id']}/produce")
    await world.staff(f"/orders/{reissue['id']}/ship", {"waybill": "SF7654321098765"})
    await world.staff(f"/orders/{reissue['id']}/complete")
    reissued = await world.seal(applicant, seal_id)
    assert reissued["key_serial"] != key_serial
    assert reissued["valid_to"] == changed["valid_to"], "a reissue keeps the end date"
    second_key = _token(softhsm_store, str(reissued["key_serial"]))
    reissued_cert = _only_certificate(second_key, pin=INITIAL_PIN)
    assert (
        format(x509.load_der_x509_certificate(reissued_cert).serial_number, "x")
        == reissued["certificate_serial"]
    )
    assert await _revoked(bridge_side, changed_cert) is True
    assert await _good(bridge_side, reissued_cert) is True

    # cancellation waits while another reissue is paid and in progress, then goes through
    await chat.say("注销印章")
    await chat.tap("确定注销")
    second = await world.api.post(
        "/v1/orders",
        json={"type": "reissue", "seal_id": seal_id, "mailing_address": ADDRESS},
        headers=applicant.headers,
    )
    assert second.status_code == 201, second.text
    await world.api.post(f"/v1/orders/{second.json()['id']}/submit", headers=applicant.headers)
    await world.pay(applicant, second.json()["id"])
    refused = joined(await chat.say(world.service.sms_code(applicant.phone, "cancel_seal")))
    assert "还有一笔「印章补办」订单" in refused
    # nothing is made for it yet: the chat offers to withdraw it; here the user keeps it
    assert "取消补办并退款" in [o.label for o in chat.options()]
    assert "订单和印章都保持不变" in joined(await chat.tap("暂不注销"))
    assert (await world.seal(applicant, seal_id))["status"] == "active"
    for step, body in (("produce", None), ("ship", {"waybill": "SF7654321098766"}), ("complete", None)):
        await world.staff(f"/orders/{second.json()['id']}/{step}", body)
    third = await world.seal(applicant, seal_id)
    third_cert = _only_certificate(_token(softhsm_store, str(third["key_serial"])), pin=INITIAL_PIN)
    world.service.clock.advance(timedelta(minutes=2))  # past the SMS resend cooldown
    await chat.say("注销印章")
    await chat.tap("确定注销")
    done = joined(await chat.say(world.service.sms_code(applicant.phone, "cancel_seal")))
    assert "已注销" in done
    assert (await world.seal(applicant, seal_id))["status"] == "cancelled"
    assert await _revoked(bridge_side, third_cert) is True


def _only_certificate(token: SoftHsmToken, *, pin: str | None = None) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cert.der"
        login = ["--login", "--pin", pin] if pin else []
        listed = token.pkcs11_tool(*login, "--list-objects", "--type", "cert")
        ids = [
            line.split(":", 1)[1].strip()
            for line in listed.stdout.splitlines()
            if line.strip().startswith("ID:")
        ]
        assert len(ids) == 1, listed.stdout
        done = token.pkcs11_tool("--read-object", "--type", "cert", "--id", ids[0], "--output-file", str(out))
        assert done.returncode == 0, done.stderr
        return out.read_bytes()
