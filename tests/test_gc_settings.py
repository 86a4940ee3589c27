"""The service process runs with the collector's young threshold raised (``bot.gc_settings``):
under load the default one made the collector a quarter of the event loop's CPU per message."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from bot import gc_settings
from bot.cli import main
from tests.deploy.test_serve_refuses_bad_settings import PREFIXES
from tests.fixtures.served import free_port


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
    assert main(["serve"]) == 0
    assert seen == [(gc_settings.YOUNG_THRESHOLD, 10, 10)]
