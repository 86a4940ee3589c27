"""`sealbot demo` makes its account through the platform: a seal produced on a SoftHSM2 token
that expires within the renewal window, a paid order in review and an issued invoice."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.demo import create_demo, print_demo, softhsm_slots
from tests.conversations.conftest import service_settings
from tests.softhsm_fixtures import SoftHsmStore

pytestmark = pytest.mark.softhsm


async def test_the_demo_seal_is_on_a_softhsm2_token_and_inside_the_renewal_window(
    tmp_path: Path, softhsm_store: SoftHsmStore
) -> None:
    settings = service_settings(tmp_path)
    out = io.StringIO()
    demo = await create_demo(settings, out)

    assert f"Serial number:    {demo.key_serial}" in softhsm_slots(demo.softhsm_conf)
    left = datetime.fromisoformat(demo.valid_to) - datetime.now(UTC)
    assert timedelta(days=25) < left < timedelta(days=35), "renewable now, not expired"
    assert "staff approve" in out.getvalue()
    printed = io.StringIO()
    print_demo(settings, demo, printed)
    assert f"演示账号 / demo account: {demo.phone}  密码 / password: {demo.password}" in printed.getvalue()
    assert f"export SOFTHSM2_CONF={demo.softhsm_conf}" in printed.getvalue()
