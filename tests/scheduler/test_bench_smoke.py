"""The planning benchmark runs end to end on a small table (the full run is by hand)."""

from __future__ import annotations

import pytest

from bench.reminders_plan import run
from tests.contract.postgres import PG_URL, require_postgres

pytestmark = pytest.mark.postgres


async def test_the_planning_benchmark_reads_only_due_seals_through_the_planning_index() -> None:
    await require_postgres()
    report = await run(PG_URL, 1000, seed=3)
    full, incremental = report.passes
    # about 64 of 1,825 days of validity are in the window: a few dozen of 1,000 seals
    assert 0 < full.seals_read < 100
    assert full.reminders_due <= full.seals_read
    assert incremental.seals_read <= full.seals_read
    text = report.render()
    assert "ix_seals_live_valid_to_id" in text
    assert "Buffers:" in text
