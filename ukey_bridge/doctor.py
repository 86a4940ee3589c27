"""``ukey-bridge doctor``: checks the pairing, the PKCS#11 module, the UKey and the connection
to the service, and says for each what to fix, in the person's language."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TextIO

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from ukey_bridge.client import CLIENT_VERSION
from ukey_bridge.credential import CredentialStore, DeviceCredential
from ukey_bridge.errors import BridgeError
from ukey_bridge.i18n import Texts
from ukey_bridge.pkcs11_backend import Pkcs11Backend, Pkcs11Config
from ukey_bridge.protocol import AuthFailed, Hello, Welcome, decode
from ukey_bridge.settings import Pkcs11Settings

CONNECT_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    text: str


async def _connection(credential: DeviceCredential, t: Texts) -> Finding:
    server = credential.server_url
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            async with connect(credential.websocket_url) as connection:
                hello = Hello(credential.device_id, credential.secret, CLIENT_VERSION, "doctor")
                await connection.send(hello.encode())
                reply = decode(await connection.recv())
    except (OSError, TimeoutError, InvalidURI, InvalidHandshake, WebSocketException, BridgeError) as exc:
        return Finding(t("check_connection"), False, t("check_connection_failed", server=server, error=exc))
    if isinstance(reply, AuthFailed):
        return Finding(t("check_connection"), False, t("check_connection_refused"))
    ok = isinstance(reply, Welcome)
    text = t("check_connection_ok", server=server) if ok else t("check_connection_refused")
    return Finding(t("check_connection"), ok, text)


async def _key(settings: Pkcs11Settings, store: CredentialStore, t: Texts) -> list[Finding]:
    if settings.module is None:
        return [Finding(t("check_module"), False, t("check_module_missing", config=store.config_dir))]
    backend = Pkcs11Backend(Pkcs11Config(settings.module, settings.key_profile))
    try:
        tokens = await backend.list_tokens()
    except BridgeError as exc:
        return [Finding(t("check_module"), False, t("check_module_failed", error=exc))]
    finally:
        await backend.close()
    found = [Finding(t("check_module"), True, t("check_module_ok", path=settings.module))]
    if not tokens:
        return [*found, Finding(t("check_token"), False, t("check_token_none"))]
    for token in tokens:
        if token.pin.locked:
            found.append(Finding(t("check_token"), False, t("check_token_locked", serial=token.serial)))
        else:
            found.append(
                Finding(t("check_token"), True, t("check_token_ok", serial=token.serial, label=token.label))
            )
    return found


async def run_doctor(store: CredentialStore, settings: Pkcs11Settings, t: Texts, out: TextIO) -> int:
    findings: list[Finding] = []
    credential = store.load() if store.exists() else None
    if credential is None:
        findings.append(Finding(t("check_pairing"), False, t("not_paired")))
    else:
        text = t("check_pairing_ok", name=credential.device_name, server=credential.server_url)
        findings.append(Finding(t("check_pairing"), True, text))
    findings += await _key(settings, store, t)
    if credential is not None:
        findings.append(await _connection(credential, t))
    print(t("doctor_title"), file=out)
    for finding in findings:
        mark = t("ok") if finding.ok else t("problem")
        print(f"[{mark}] {finding.check}: {finding.text}", file=out)
    problems = sum(not f.ok for f in findings)
    print(t("all_ok") if problems == 0 else t("some_problems", count=problems), file=out)
    return 0 if problems == 0 else 1
