"""Fixtures of the privacy tests: the in-process service, and the service as ``sealbot serve``
builds it (WeChat and Telegram on their fakes) on a free port."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conversations.conftest import service  # noqa: F401  (the whole service, in process)
from tests.wired_service import Wired, wired_service


@pytest.fixture
async def wired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Wired]:
    async with wired_service(tmp_path, monkeypatch) as running:
        yield running
