"""Which PKCS#11 module and key profile to use: ``bridge.toml`` in the config dir, then flags.

Example ``bridge.toml`` for a vendor key with its own mechanism numbers::

    [pkcs11]
    module = "/usr/lib/vendor/libukey_p11.so"
    key_type = "ec-p256"          # or "rsa"
    rsa_bits = 2048
    keygen_mechanism = 0x1040     # vendor numbers go here
    sign_mechanism = 0x1041
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ukey_bridge.backend import KeyAlgorithm, KeyProfile
from ukey_bridge.errors import BridgeError

SETTINGS_FILE = "bridge.toml"
DEFAULT_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
)


class SettingsError(BridgeError):
    pass


@dataclass(frozen=True)
class Pkcs11Settings:
    module: str | None
    key_profile: KeyProfile


def _mechanism(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 0)
    except ValueError:
        raise SettingsError(f"{name} must be a number like 0x1041, not {value!r}") from None


def load_settings(config_dir: Path, overrides: dict[str, Any]) -> Pkcs11Settings:
    values: dict[str, Any] = {}
    path = config_dir / SETTINGS_FILE
    if path.exists():
        try:
            values.update(tomllib.loads(path.read_text("utf-8")).get("pkcs11", {}))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path} is not valid TOML: {exc}") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        algorithm = KeyAlgorithm(values.get("key_type", KeyAlgorithm.EC_P256.value))
    except ValueError:
        raise SettingsError(f"key_type must be one of {[a.value for a in KeyAlgorithm]}") from None
    module = values.get("module")
    if module is None:
        module = next((m for m in DEFAULT_MODULES if Path(m).exists()), None)
    profile = KeyProfile(
        algorithm=algorithm,
        rsa_bits=int(values.get("rsa_bits", 2048)),
        keygen_mechanism=_mechanism(values.get("keygen_mechanism"), "keygen_mechanism"),
        sign_mechanism=_mechanism(values.get("sign_mechanism"), "sign_mechanism"),
    )
    return Pkcs11Settings(str(module) if module else None, profile)
