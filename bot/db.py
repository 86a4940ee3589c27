"""The bot's own database: its declarative base (metadata) and, re-exported, the plumbing.

The bot's state (conversations, outbox, bridges, support, reminders) is apart from the
platform's data; the two may share one PostgreSQL server but never a table.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from dbkit.database import Database, utcnow
from dbkit.engine import NAMING_CONVENTION

__all__ = ["Base", "Database", "utcnow"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
