"""Alembic migrations; run them with ``laowu db upgrade``."""
