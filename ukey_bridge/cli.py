"""``ukey-bridge``: pair this PC with a chat account, run the bridge, show status, unpair."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ukey_bridge.client import BridgeClient
from ukey_bridge.credential import CredentialStore, default_config_dir
from ukey_bridge.doctor import run_doctor
from ukey_bridge.errors import BridgeError, CredentialRevoked, NotPaired
from ukey_bridge.i18n import Texts, pick_language
from ukey_bridge.jobs import JobRunner
from ukey_bridge.journal import JobJournal
from ukey_bridge.pairing import pair, unpair
from ukey_bridge.pin_prompt import PinPrompt, TerminalPinPrompt
from ukey_bridge.pkcs11_backend import Pkcs11Backend, Pkcs11Config
from ukey_bridge.settings import Pkcs11Settings, SettingsError, load_settings
from ukey_bridge.single_run import AlreadyRunning, only_run

STATUS_FILE = "status.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ukey-bridge",
        description=(
            "Runs UKey steps (renewal, change, unlock, PIN change) for your seal chat on this PC. "
            "Your UKey PIN is typed here and never sent to the chat or the service."
        ),
    )
    parser.add_argument("--config-dir", type=Path, default=None, help="where the pairing is kept")
    parser.add_argument(
        "--lang",
        choices=["zh-CN", "en"],
        default=None,
        help="language (default: zh-CN, or en for an English system)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    pair_cmd = commands.add_parser("pair", help="pair this PC using the code the chat gave you")
    pair_cmd.add_argument("code", help="the 8-character pairing code from the chat")
    pair_cmd.add_argument(
        "--server", required=True, help="the service address, e.g. https://seal.example.com"
    )
    pair_cmd.add_argument("--name", default=None, help="a name for this PC (default: its host name)")

    run_cmd = commands.add_parser("run", help="connect and carry out UKey jobs from the chat")
    run_cmd.add_argument("--module", default=None, help="path of the UKey's PKCS#11 module")
    run_cmd.add_argument("--key-type", choices=["ec-p256", "rsa"], default=None)
    run_cmd.add_argument("--rsa-bits", type=int, default=None)
    run_cmd.add_argument("--keygen-mechanism", default=None, help="vendor mechanism number, e.g. 0x1040")
    run_cmd.add_argument("--sign-mechanism", default=None, help="vendor mechanism number, e.g. 0x1041")
    run_cmd.add_argument(
        "--pin-entry",
        choices=["terminal", "browser"],
        default="terminal",
        help="type PINs here, or in a page on 127.0.0.1 opened by a one-time link",
    )

    status_cmd = commands.add_parser("status", help="show pairing, connection and UKey state")
    status_cmd.add_argument("--module", default=None)
    commands.add_parser("unpair", help="revoke this PC on the service and forget the pairing")
    doctor_cmd = commands.add_parser(
        "doctor", help="check the module, the UKey and the connection; say what to fix"
    )
    doctor_cmd.add_argument("--module", default=None)
    return parser


def _settings(config_dir: Path, args: argparse.Namespace) -> Pkcs11Settings:
    overrides: dict[str, Any] = {"module": getattr(args, "module", None)}
    for name in ("key_type", "rsa_bits", "keygen_mechanism", "sign_mechanism"):
        overrides[name] = getattr(args, name, None)
    return load_settings(config_dir, overrides)


async def _pair(args: argparse.Namespace, store: CredentialStore, out: TextIO) -> int:
    t = Texts(pick_language(args.lang))
    credential = await pair(args.server, args.code, device_name=args.name)
    store.save(credential)
    print(t("paired", name=credential.device_name), file=out)
    print(t("next_run"), file=out)
    return 0


async def _run(args: argparse.Namespace, store: CredentialStore, out: TextIO) -> int:
    t = Texts(pick_language(args.lang))
    credential = store.load()
    settings = _settings(store.config_dir, args)
    if settings.module is None:
        print(t("no_module"), file=out)
        return 2
    config = Pkcs11Config(settings.module, settings.key_profile)
    prompt: PinPrompt
    if args.pin_entry == "browser":
        from ukey_bridge.local_page import LocalPagePinPrompt

        prompt = LocalPagePinPrompt(
            announce=lambda url: print(t("open_page", url=url), file=out, flush=True), texts=t
        )
    else:
        prompt = TerminalPinPrompt(out=out, texts=t)
    runner = JobRunner(
        lambda: Pkcs11Backend(config), prompt, journal=JobJournal(store.config_dir / "jobs"), texts=t
    )

    async def inserted() -> list[str]:
        backend = Pkcs11Backend(config)
        try:
            return [token.serial for token in await backend.list_tokens()]
        finally:
            await backend.close()

    client = BridgeClient(
        credential, runner, status_file=store.config_dir / STATUS_FILE, token_serials=inserted
    )
    try:
        with only_run(store.config_dir):
            print(t("connecting", server=credential.server_url, name=credential.device_name), file=out)
            await client.run_forever()
    except AlreadyRunning:
        print(t("already_running"), file=out)
        return 4
    except CredentialRevoked as exc:
        print(t("revoked_run") if exc.unpaired else t("refused_run", reason=exc.reason), file=out)
        return 3
    return 0


async def _status(args: argparse.Namespace, store: CredentialStore, out: TextIO) -> int:
    t = Texts(pick_language(args.lang))
    if not store.exists():
        print(t("not_paired"), file=out)
        return 1
    credential = store.load()
    print(t("status_paired", name=credential.device_name, device_id=credential.device_id), file=out)
    print(t("status_server", server=credential.server_url), file=out)
    status_path = store.config_dir / STATUS_FILE
    online = False
    if status_path.exists():
        online = bool(json.loads(status_path.read_text("utf-8")).get("online"))
    print(t("status_online_yes") if online else t("status_online_no"), file=out)
    settings = _settings(store.config_dir, args)
    if settings.module is None:
        print(t("status_no_module"), file=out)
        return 0
    backend = Pkcs11Backend(Pkcs11Config(settings.module, settings.key_profile))
    try:
        tokens = await backend.list_tokens()
    except BridgeError as exc:
        print(t("status_cannot_read", error=exc), file=out)
        return 0
    finally:
        await backend.close()
    if not tokens:
        print(t("status_no_token"), file=out)
    for token in tokens:
        flags = [
            t(key)
            for key, on in (
                ("flag_count_low", token.pin.count_low),
                ("flag_final_try", token.pin.final_try),
                ("flag_locked", token.pin.locked),
                ("flag_to_be_changed", token.pin.to_be_changed),
            )
            if on
        ]
        shown = t("flag_separator").join(flags) or t("flag_pin_ok")
        print(t("status_token", label=token.label, serial=token.serial, flags=shown), file=out)
    return 0


async def _unpair(args: argparse.Namespace, store: CredentialStore, out: TextIO) -> int:
    t = Texts(pick_language(args.lang))
    credential = store.load()
    try:
        revoked = await unpair(credential)
    except BridgeError as exc:
        print(t("unpair_unreachable", error=exc), file=out)
        return 1
    store.delete()
    print(t("unpaired") if revoked else t("pairing_removed"), file=out)
    return 0


async def run_command(args: argparse.Namespace, out: TextIO) -> int:
    store = CredentialStore(args.config_dir or default_config_dir())
    if args.command == "pair":
        return await _pair(args, store, out)
    if args.command == "run":
        return await _run(args, store, out)
    if args.command == "status":
        return await _status(args, store, out)
    if args.command == "doctor":
        return await run_doctor(
            store, _settings(store.config_dir, args), Texts(pick_language(args.lang)), out
        )
    return await _unpair(args, store, out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    stream = out or sys.stdout
    try:
        return asyncio.run(run_command(args, stream))
    except (NotPaired, SettingsError) as exc:
        print(str(exc), file=stream)
        return 1
    except BridgeError as exc:
        print(f"Error: {exc}", file=stream)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
