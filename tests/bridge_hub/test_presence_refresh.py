"""A connected PC's presence row is refreshed when it is half-way to expiring, not on every
heartbeat and every sweep: it never expires while the socket is held, and costs a write per
half-life per PC."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from bot.bridge import protocol as wire
from bot.bridge.hub import BridgeHub
from bot.bridge.models import BridgePresence
from bot.bridge.presence import PRESENCE_TTL
from tests.bridge_hub.conftest import CAIssuer, Clock, FixedSoPins, Updates, make_db
from tests.ukey_bridge.support import SmallCA

ACCOUNT = "acct-presence"


async def test_heartbeats_refresh_the_presence_row_only_when_it_is_half_way_to_expiring(
    tmp_path: Path,
) -> None:
    db = await make_db(tmp_path / "bot.db")
    clock = Clock()
    hub = BridgeHub(
        db, issuer=CAIssuer(SmallCA()), so_pins=FixedSoPins(), on_job_update=Updates(), clock=clock
    )
    try:
        code = await hub.create_pairing_code(ACCOUNT)
        paired = await hub.redeem_pairing_code(code.code, "Office PC", "127.0.0.1")
        device = await hub.authenticate(
            wire.Hello(
                device_id=paired.device_id, secret=paired.secret, client_version="test", host_name="pc"
            )
        )
        assert not isinstance(device, str)

        async def ignore(*_args: object) -> None:
            return None

        await hub.attach(device, ignore, ignore)

        async def last_seen() -> datetime:
            async with db.session() as session:
                row = await session.get(BridgePresence, paired.device_id)
            assert row is not None
            return row.last_seen.replace(tzinfo=clock.now.tzinfo)

        attached_at = clock.now
        heartbeat = wire.Heartbeat(sent_at=0.0).encode()
        for _ in range(2):  # 20 s apart, as the bridge sends them
            clock.now += timedelta(seconds=12)
            await hub.handle_frame(paired.device_id, heartbeat)
            await hub.sweep()
            assert await last_seen() == attached_at, "a fresh row was written again"
        assert await hub.is_online(ACCOUNT)

        clock.now = attached_at + PRESENCE_TTL / 2
        await hub.handle_frame(paired.device_id, heartbeat)
        assert await last_seen() == clock.now, "a row half-way to expiring was not refreshed"

        # the sweep alone keeps it too (an older bridge, or heartbeats lost)
        clock.now += PRESENCE_TTL / 2
        await hub.sweep()
        assert await last_seen() == clock.now
        assert await hub.is_online(ACCOUNT)
    finally:
        await db.dispose()
