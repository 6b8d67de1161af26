"""Alembic's migrations of privasync's schema, applied by ``privasync db upgrade``."""
