"""Alembic upgrade → downgrade → upgrade on SQLite and PostgreSQL, and models == migrations."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bot.cli import main
from bot.storage.database import create_engine
from bot.storage.migrate import downgrade, head_revision, upgrade
from bot.storage.models import Base
from tests.conftest import create_pg_database, drop_pg_database, requires_postgres


async def _tables_and_diff(url: str) -> tuple[set[str], list[object]]:
    engine = create_engine(url)

    def inspect_db(connection: Connection) -> tuple[set[str], list[object]]:
        tables = set(inspect(connection).get_table_names())
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
        return tables, diff

    async with engine.connect() as connection:
        result = await connection.run_sync(inspect_db)
    await engine.dispose()
    return result


def _roundtrip(url: str) -> None:
    upgrade(url)
    tables, diff = asyncio.run(_tables_and_diff(url))
    assert {"people", "identities", "teams", "processed_events", "outbox", "audit_log"} <= tables
    assert diff == [], f"models and migrations disagree: {diff}"
    downgrade(url, "base")
    tables, _ = asyncio.run(_tables_and_diff(url))
    assert tables <= {"alembic_version"}
    upgrade(url)
    tables, _ = asyncio.run(_tables_and_diff(url))
    assert "outbox" in tables


def test_roundtrip_on_sqlite(tmp_path: Path) -> None:
    _roundtrip(f"sqlite:///{tmp_path / 'roundtrip.db'}")


@requires_postgres
def test_roundtrip_on_postgresql() -> None:
    name = f"evangelist_mig_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_pg_database(name))
    try:
        _roundtrip(url)
    finally:
        asyncio.run(drop_pg_database(name))


def test_db_upgrade_command(tmp_path: Path, monkeypatch: object, capsys: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("EVANGELIST_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    tables, _ = asyncio.run(_tables_and_diff(url))
    assert "outbox" in tables
    assert head_revision() is not None
