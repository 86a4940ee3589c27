from __future__ import annotations

import pytest

from tests.softhsm_fixtures import softhsm as softhsm
from tests.softhsm_fixtures import softhsm_store as softhsm_store
from tests.ukey_bridge.support import SmallCA


@pytest.fixture
def ca() -> SmallCA:
    return SmallCA()
