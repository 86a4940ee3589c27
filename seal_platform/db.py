"""The platform's own database: its declarative base (metadata) and, re-exported, the plumbing.

The platform keeps its data apart from the bot's (its own metadata and URL), which is what lets
it run in-process today and as a separate service tomorrow.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from dbkit.database import Database, utcnow
from dbkit.engine import NAMING_CONVENTION

__all__ = ["Base", "Database", "utcnow"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
