"""The production stations paired to staff accounts, and which of them were unpaired.

A station's credential is derived from its device id under the platform's secret (so only the
platform can make one); this table adds what a derived secret cannot carry: its name, who it is
paired to, and its unpairing. An unpaired station is refused at its next connection (and its
live connection is closed at once by the hub). A station paired before this table existed has
no row: it is recorded on its first connection, so it can be unpaired like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dbkit.types import UtcDateTime
from seal_platform.db import Base


class StationDevice(Base):
    __tablename__ = "station_devices"

    device_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    staff_username: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    paired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(64), default=None)


@dataclass(frozen=True)
class StationInfo:
    device_id: str
    name: str
    paired_at: datetime
    online: bool


async def record_pairing(session: AsyncSession, device_id: str, staff: str, name: str, now: datetime) -> None:
    if await session.get(StationDevice, device_id) is None:
        session.add(
            StationDevice(device_id=device_id, staff_username=staff, name=name[:64] or "PC", paired_at=now)
        )


async def is_revoked(session: AsyncSession, device_id: str) -> bool:
    row = await session.get(StationDevice, device_id)
    return row is not None and row.revoked_at is not None


async def revoke(session: AsyncSession, device_id: str, staff: str, by: str, now: datetime) -> bool:
    """Unpair a station of ``staff``; False when it is not theirs or was unpaired already."""
    row = await session.get(StationDevice, device_id)
    if row is None or row.staff_username != staff or row.revoked_at is not None:
        return False
    row.revoked_at, row.revoked_by = now, by
    return True


async def paired_stations(session: AsyncSession, staff: str) -> list[StationDevice]:
    rows = await session.scalars(
        select(StationDevice)
        .where(StationDevice.staff_username == staff, StationDevice.revoked_at.is_(None))
        .order_by(StationDevice.paired_at)
    )
    return list(rows)
