"""The service process runs with the collector's young threshold raised (``bot.gc_settings``):
under load the default one made the collector a quarter of the event loop's CPU per message.
Once started it keeps what start-up made out of later collections, and times every pause."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot import app as bot_app
from bot import gc_settings
from bot.app import create_app
from bot.cli import main
from bot.engine.store import WriterUsage
from bot.telemetry import ServiceTelemetry
from scheduler.metrics import MetricsRegistry
from tests.deploy.test_serve_refuses_bad_settings import PREFIXES
from tests.fixtures.metrics import read_samples
from tests.fixtures.served import free_port, serve_in_loop, service_settings


@pytest.fixture
def thresholds_kept() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_service_setting_raises_the_young_threshold_only(thresholds_kept: tuple[int, int, int]) -> None:
    before = gc_settings.configure_for_service()
    assert before == thresholds_kept
    assert gc.get_threshold() == (gc_settings.YOUNG_THRESHOLD, before[1], before[2])
    assert before[0] < gc_settings.YOUNG_THRESHOLD


def test_sealbot_serve_runs_its_server_with_the_service_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, thresholds_kept: tuple[int, int, int]
) -> None:
    for name in os.environ:
        if name.startswith(PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEALBOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SEALBOT_PORT", str(free_port()))
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    gc.set_threshold(700, 10, 10)  # CPython's default
    seen: list[tuple[int, int, int]] = []

    def run(_server: uvicorn.Server) -> None:  # the server, not started: what it would run with
        seen.append(gc.get_threshold())

    monkeypatch.setattr(uvicorn.Server, "run", run)
    built = bot_app.create_app
    after_start: list[object] = []

    def create_app_seen(settings: object, **options: object) -> object:
        after_start.append(options.get("after_start"))
        return built(settings, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(bot_app, "create_app", create_app_seen)
    assert main(["serve"]) == 0
    assert seen == [(gc_settings.YOUNG_THRESHOLD, 10, 10)]
    assert after_start == [gc_settings.serving]  # frozen and timed once it has started


# ---- the pauses, and what start-up made kept out of the collector's sight ------------------------


@pytest.fixture
def pauses() -> Iterator[gc_settings.CollectorPauses]:
    timed = gc_settings.CollectorPauses()
    timed.start()
    yield timed
    timed.stop()


def test_every_pause_is_timed_by_generation_and_handed_over_once(pauses: gc_settings.CollectorPauses) -> None:
    gc.collect()  # a full collection
    gc.collect(0)
    drained = pauses.drain()
    assert [generation for generation, _ in drained][-2:] == [2, 0]
    assert all(seconds > 0 for _, seconds in drained)
    assert pauses.count[2] >= 1
    assert pauses.longest[2] > 0
    assert pauses.drain() == []
    timed = pauses.stop()
    gc.collect()
    assert pauses.count[2] == sum(1 for generation, _ in drained if generation == 2)  # stopped
    assert timed == pytest.approx(sum(seconds for _, seconds in drained))


def test_metrics_show_the_collectors_pauses_by_generation(pauses: gc_settings.CollectorPauses) -> None:
    telemetry = ServiceTelemetry(collector=pauses)
    gc.collect()
    telemetry.sync(
        registry=MetricsRegistry(), store_writes=0, store_writer=WriterUsage(0.0, 0.0), bus_healthy=True
    )
    shown = read_samples(telemetry.render().decode())
    full = (("generation", "2"),)
    assert shown[("sealbot_gc_pause_seconds_count", full)] >= 1
    assert shown[("sealbot_gc_longest_pause_seconds", full)] > 0


async def test_the_app_calls_after_start_once_everything_has_started(tmp_path: Path) -> None:
    started: list[bool] = []
    app = create_app(
        service_settings(tmp_path, free_port()),
        after_start=lambda: started.append(hasattr(app.state, "container")),
    )
    async with serve_in_loop(app, free_port()) as base, httpx.AsyncClient() as client:
        assert (await client.get(f"{base}/healthz")).status_code == 200
    assert started == [True]


def test_serving_freezes_what_start_up_made_and_times_every_pause_after() -> None:
    assert gc.get_freeze_count() == 0
    try:
        gc_settings.serving()
        assert gc.get_freeze_count() > 0  # start-up's objects: out of every later collection
        before = gc_settings.SERVICE_PAUSES.count[2]
        gc.collect()
        assert gc_settings.SERVICE_PAUSES.count[2] == before + 1
    finally:
        gc_settings.SERVICE_PAUSES.stop()
        gc.unfreeze()  # this test process goes on collecting its objects
