"""Bridge tables in the bot's database: pairing codes, devices, jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; everything here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class BridgePairingCode(Base):
    __tablename__ = "bridge_pairing_codes"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    conversation_ref: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_attempts: Mapped[int] = mapped_column(Integer, default=0)


class BridgePairFailure(Base):
    """A refused pairing attempt, for the per-address limit (works across workers)."""

    __tablename__ = "bridge_pair_failures"
    __table_args__ = (Index("ix_bridge_pair_failures_ip_at", "client_ip", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BridgeDevice(Base):
    __tablename__ = "bridge_devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the 256-bit secret: a random secret needs no slow hash
    credential_hash: Mapped[str] = mapped_column(String(64))
    signing_key: Mapped[str] = mapped_column(String(64))  # hex HMAC key for jobs
    conversation_ref: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BridgeJob(Base):
    __tablename__ = "bridge_jobs"
    __table_args__ = (Index("ix_bridge_jobs_account_status", "account_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(32))
    # the PC the user picked in the chat (several had the seal's UKey); None: any that has it
    device_choice: Mapped[str | None] = mapped_column(String(32), default=None)
    job_type: Mapped[str] = mapped_column(String(32))
    # never holds the SO PIN: that is fetched when the job is sent
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    conversation_ref: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # pending, sent, succeeded, failed
    stage: Mapped[str | None] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    issued: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BridgePresence(Base):
    """One open bridge WebSocket, on whichever worker holds it: every worker reads presence here.

    ``last_seen`` moves on the bridge's heartbeats and the holding worker's sweep; a row not
    refreshed for ``PRESENCE_TTL`` belongs to a worker that died and is ignored, then deleted.
    """

    __tablename__ = "bridge_presence"
    __table_args__ = (Index("ix_bridge_presence_account_seen", "account_id", "last_seen"),)

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    worker_id: Mapped[str] = mapped_column(String(32))
    # tells a newer connection of the same PC from the older one its worker is still closing
    connection_id: Mapped[str] = mapped_column(String(32))
    # the UKey serials the PC reported; None until it reports (an older bridge never does)
    tokens: Mapped[list[str] | None] = mapped_column(JSON)
    connected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
