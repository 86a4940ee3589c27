"""The form benchmark runs end to end on every contender (a small size; CI does not bench)."""

from __future__ import annotations

import asyncio

import pytest

from bench import gil_overlap
from bench.forms import parse_args, report, run_all


def test_the_form_benchmark_runs_with_20_users() -> None:
    args = parse_args(["--users", "20", "--concurrency", "8"])
    # The bench owns its event loops (as ``python -m bench.forms`` does).
    results = asyncio.run(run_all(args))
    assert set(results) == {
        "engine (SQLite, durable)",
        "PTB ConversationHandler (memory)",
        "PTB + PicklePersistence (flush per update)",
        "aiogram 3 FSM (MemoryStorage)",
    }
    for result in results.values():
        assert result["messages"] == result["replies"] == 200
    text = report(args, results)
    assert "engine / PTB memory" in text
    assert "engine / PTB pickle" in text


def test_the_gil_overlap_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    gil_overlap.main(["--seconds", "0.2"])
    printed = capsys.readouterr().out
    assert "writer thread beside a busy loop" in printed
