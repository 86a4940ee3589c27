from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tools import missing_tool
from tests.ukey_bridge.support import SmallCA, SoftHsmToken, init_softhsm_token


@pytest.fixture
def ca() -> SmallCA:
    return SmallCA()


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsmToken:
    if shutil.which("softhsm2-util") is None:
        missing_tool("SoftHSM2 is not installed (apt-get install softhsm2)")
    token = init_softhsm_token(tmp_path / "softhsm")
    # SoftHSM2 reads SOFTHSM2_CONF when the module is initialised; the backend loads the module
    # per job and unloads it after, so each test's private token directory is picked up
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    return token
