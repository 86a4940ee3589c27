"""The device credential that pairing gives this PC, kept in a file only its owner can read."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ukey_bridge.errors import NotPaired

CREDENTIAL_FILE = "credential.json"


def default_config_dir() -> Path:
    """~/.config/sealbot-bridge (or under $XDG_CONFIG_HOME, or %APPDATA% on Windows)."""
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "sealbot-bridge"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sealbot-bridge"


@dataclass(frozen=True)
class DeviceCredential:
    server_url: str
    device_id: str
    account_id: str
    secret: str
    device_name: str
    paired_at: str

    @property
    def websocket_url(self) -> str:
        base = self.server_url.rstrip("/")
        if base.startswith("https://"):
            base = "wss://" + base.removeprefix("https://")
        elif base.startswith("http://"):
            base = "ws://" + base.removeprefix("http://")
        return base + "/bridge/ws"


class CredentialStore:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.path = config_dir / CREDENTIAL_FILE

    def save(self, credential: DeviceCredential) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        # created 0600 from the start: there is no moment where others could read the secret
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(credential), handle)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)

    def load(self) -> DeviceCredential:
        try:
            body = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            raise NotPaired(f"this PC is not paired (no {self.path})") from None
        return DeviceCredential(**{k: str(body[k]) for k in DeviceCredential.__dataclass_fields__})

    def exists(self) -> bool:
        return self.path.exists()

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
