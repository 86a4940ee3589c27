"""The channel lifecycle: idempotent initialize/shutdown, ``async with``, and the container's
start in order that unwinds what started when a later channel fails."""

from __future__ import annotations

import pytest

from bot.channels.base import ChannelLifecycle, SimpleHealth, start_in_order, stop_in_reverse
from bot.channels.terminal import TerminalChannel


class Recording(ChannelLifecycle):
    router = None
    passive_window = None

    def __init__(self, name: str, log: list[str], *, fails: bool = False) -> None:
        self.name = name
        self.log = log
        self.fails = fails
        self.sender = TerminalChannel().sender

    async def _start(self) -> None:
        if self.fails:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def _stop(self) -> None:
        self.log.append(f"stop {self.name}")

    async def health(self) -> SimpleHealth:
        return SimpleHealth(self.name)


async def test_initialize_and_shutdown_happen_once_however_often_called() -> None:
    log: list[str] = []
    channel = Recording("a", log)
    await channel.shutdown()  # never started: nothing to stop
    await channel.initialize()
    await channel.initialize()
    await channel.shutdown()
    await channel.shutdown()
    assert log == ["start a", "stop a"]
    async with channel as same:
        assert same is channel
    assert log == ["start a", "stop a", "start a", "stop a"]


async def test_a_failing_channel_unwinds_those_started_before_it() -> None:
    log: list[str] = []
    channels = [
        Recording("a", log),
        Recording("b", log),
        Recording("c", log, fails=True),
        Recording("d", log),
    ]
    with pytest.raises(RuntimeError, match="c cannot start"):
        await start_in_order(channels)
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_channels_stop_in_reverse_order() -> None:
    log: list[str] = []
    channels = [Recording("a", log), Recording("b", log)]
    await start_in_order(channels)
    await stop_in_reverse(channels)
    assert log == ["start a", "start b", "stop b", "stop a"]
