"""The one SoftHSM2 fixture of the UKey tests (bridge, hub, flows, production station).

``softhsm_store`` is a private SoftHSM2 token directory with only the blank slot SoftHSM2
always offers: what a production station sees with a new key inserted. ``softhsm`` adds a
token initialised by ``softhsm2-util`` for the bridge tests that start from an existing key.
Both need OpenSC's ``pkcs11-tool`` too, which the tests use to read a token independently of
the bridge's own PKCS#11 code. tests/conftest.py registers these fixtures for every package.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tools import missing_tool
from tests.ukey_bridge.support import SOFTHSM_MODULE, SoftHsmToken, init_softhsm_token
from ukey_bridge.backend import KeyProfile
from ukey_bridge.pkcs11_backend import Pkcs11Backend, Pkcs11Config


@dataclass(frozen=True)
class SoftHsmStore:
    conf: Path
    module: str = SOFTHSM_MODULE

    def backend(self, profile: KeyProfile | None = None) -> Pkcs11Backend:
        return Pkcs11Backend(Pkcs11Config(self.module, profile or KeyProfile()))

    def token(self, serial: str, label: str) -> SoftHsmToken:
        """A token of this store, as the tests' pkcs11-tool and backend helpers address it."""
        return SoftHsmToken(self.conf, label, serial, self.module)


def _require_tools() -> None:
    if shutil.which("softhsm2-util") is None or shutil.which("pkcs11-tool") is None:
        missing_tool("SoftHSM2 and OpenSC are not installed (scripts/system-deps.sh)")


@pytest.fixture
def softhsm_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsmStore:
    _require_tools()
    tokens = tmp_path / "softhsm" / "tokens"
    tokens.mkdir(parents=True)
    conf = tmp_path / "softhsm" / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    # SoftHSM2 reads SOFTHSM2_CONF when the module is initialised; the backend loads the module
    # per job and unloads it after, so each test's private token directory is picked up
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    return SoftHsmStore(conf)


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsmToken:
    _require_tools()
    token = init_softhsm_token(tmp_path / "softhsm-initialised")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    return token


def slots_shown(store: SoftHsmStore) -> str:
    """``softhsm2-util --show-slots``: the tokens as SoftHSM2 itself lists them."""
    util = shutil.which("softhsm2-util")
    assert util is not None
    shown = subprocess.run(  # noqa: S603 - fixed tool, no outside input
        [util, "--show-slots"],
        env={"SOFTHSM2_CONF": str(store.conf), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    )
    return shown.stdout
