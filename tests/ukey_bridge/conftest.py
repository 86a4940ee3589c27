from __future__ import annotations

import pytest

from tests.ukey_bridge.support import SmallCA


@pytest.fixture
def ca() -> SmallCA:
    return SmallCA()
