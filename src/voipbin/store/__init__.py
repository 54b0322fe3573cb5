"""Persistence: SQLAlchemy 2 models, the async engine/session factory and Alembic migrations."""
