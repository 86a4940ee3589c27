"""The form benchmark runs end to end on every contender (a small size; CI does not bench)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from bench import gil_overlap, lock_hold, process_hop, ptb_forms, store_cost
from bench.forms import parse_args, report, run_all
from bot import gc_settings


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
        assert isinstance(result["gc_seconds"], float)  # every contender's collector time is measured
        assert result["gc_seconds"] >= 0
    text = report(args, results)
    assert "engine / PTB memory" in text
    assert "engine / PTB pickle" in text
    assert text.count("garbage collector") == len(results)


def test_the_form_benchmark_can_run_every_contender_with_the_services_collector_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = gc.get_threshold()
    args = parse_args(
        ["--users", "20", "--concurrency", "8", "--rounds", "1", "--only", "ptb", "--service-gc-for-all"]
    )
    seen: list[tuple[int, int, int]] = []
    original = ptb_forms.run

    async def ptb_seeing_the_threshold(*a: Any, **kw: Any) -> dict[str, Any]:
        seen.append(gc.get_threshold())
        return await original(*a, **kw)

    monkeypatch.setattr(ptb_forms, "run", ptb_seeing_the_threshold)
    asyncio.run(run_all(args))
    assert seen == [(gc_settings.YOUNG_THRESHOLD, before[1], before[2])]
    assert gc.get_threshold() == before  # set back afterwards


def test_the_gil_overlap_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    gil_overlap.main(["--seconds", "0.2"])
    printed = capsys.readouterr().out
    assert "writer thread beside a busy loop" in printed


def test_the_store_cost_benchmark_runs_with_20_users() -> None:
    args = store_cost.parse_args(["--users", "20", "--concurrency", "8", "--rounds", "1"])
    results = asyncio.run(store_cost.run_all(args))
    assert set(results) == {
        store_cost.PRODUCT,
        store_cost.HOP_ONLY,
        store_cost.PROCESS_HOP,
        store_cost.NO_WORK,
        store_cost.PTB,
    }
    for result in results.values():
        assert result["messages"] == result["replies"] == 200
    product = results[store_cost.PRODUCT]
    # the product's SQLite work ran on the event loop, within the loop's CPU time; the writer
    # thread (only for batches another connection's lock kept off the loop) did less
    assert 0 < product["store_loop_seconds"] < product["seconds"]
    assert 0 <= product["writer_busy_seconds"] < product["seconds"] + 1
    assert product["writer_busy_seconds"] < product["store_loop_seconds"]
    text = store_cost.report(args, results)
    assert "x PTB" in text
    assert "writer thread busy" in text


def test_the_process_hop_answers_every_call_from_its_child_in_order_of_the_calls() -> None:
    async def scenario() -> tuple[list[object], int | None]:
        hop = process_hop.ProcessHop()
        await hop.initialize()
        try:
            # many calls of one iteration travel as one frame; a large answer spans several reads
            answers = await asyncio.gather(
                *(hop.round_trip(("argument", n), {"n": n, "text": "字" * 5000}) for n in range(300))
            )
            child = hop._child
            assert child is not None
            assert child.poll() is None  # another process, still running
        finally:
            await hop.shutdown()
        return answers, child.returncode

    answers, exit_code = asyncio.run(scenario())
    assert answers == [{"n": n, "text": "字" * 5000} for n in range(300)]
    assert exit_code == 0  # the child ended when its input was closed


@pytest.mark.postgres
def test_the_lock_hold_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    lock_hold.main(["--holds", "20"])
    printed = capsys.readouterr().out
    assert "20 holds in a row" in printed
    assert "us CPU per hold" in printed
