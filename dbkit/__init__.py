"""Database plumbing shared by the bot and the platform: engines, a UTC timestamp type, and
running Alembic migrations. Each side keeps its own metadata, tables and migrations; only the
way they reach a database is common."""
