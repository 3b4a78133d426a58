"""Alembic migrations. `env.py` takes the URL from settings and the metadata from the models."""
