"""The deployment tests' one fixture: the topology of docs/deploy.md started as processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bench.topology import Cluster
from tests.contract.postgres import PG_URL, require_postgres

StartCluster = Callable[[int], Awaitable[Cluster]]


@pytest.fixture
async def start_cluster(tmp_path: Path) -> AsyncIterator[StartCluster]:
    """``await start_cluster(workers)``: the platform (``sealbot-platform serve``) and that many
    ``sealbot serve`` workers in remote mode behind the proxy, on fresh PostgreSQL databases;
    all stopped and dropped after the test."""
    started: list[Cluster] = []

    async def start(workers: int) -> Cluster:
        await require_postgres()
        topology = Cluster(tmp_path / f"cluster-{len(started)}", PG_URL, workers=workers)
        started.append(topology)
        await topology.start()
        return topology

    try:
        yield start
    finally:
        for topology in started:
            await topology.stop()
