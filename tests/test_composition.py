"""The composition root builds the whole service in phases: the container comes out complete,
and nothing is wired into it afterwards."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.app import Container, build_container
from bot.settings import Settings


async def test_the_container_is_built_complete_and_cannot_be_rewired(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        data_dir=tmp_path / "var",
    )
    container = await build_container(settings)
    try:
        unset = [
            f.name
            for f in dataclasses.fields(Container)
            if getattr(container, f.name) is None and f.name not in {"wechat", "telegram"}
        ]
        assert unset == []
        # the duties are planned at construction: reminders, support timeouts, media retention
        planned = {job.id for job in container.scheduler.get_jobs()}
        assert {"reminders", "support_timeouts", "media_retention"} <= planned
        with pytest.raises(dataclasses.FrozenInstanceError):
            container.support = container.support  # type: ignore[misc]
    finally:
        await container.stop()
