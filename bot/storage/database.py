"""The engine factory and the unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.core.errors import ConfigurationError


def async_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and give them an async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with the URL in it
        raise ConfigurationError(f"EVANGELIST_DATABASE_URL is not a database URL ({exc})") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and driver in ("", "psycopg2", "psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(f"EVANGELIST_DATABASE_URL: {backend!r} is not supported")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, **options: Any) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_pre_ping", True)
    if "poolclass" not in options:
        options.setdefault("pool_size", 10)
        options.setdefault("max_overflow", 10)
    return create_async_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while one writer commits; the busy timeout turns "database is
    # locked" into a short wait; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def dialect_of(session: AsyncSession) -> str:
    """The dialect name of the session's connection ('sqlite' or 'postgresql')."""
    bind = session.get_bind()
    return str(bind.dialect.name)


def insert_for(session: AsyncSession) -> Callable[[Any], Any]:
    """The dialect's INSERT, for `ON CONFLICT DO NOTHING` on PostgreSQL and SQLite alike."""
    return pg_insert if dialect_of(session) == "postgresql" else sqlite_insert


class Database:
    """Owns the engine; hands out sessions inside transactions."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = async_url(url)
        self.engine = create_engine(self.url, **options)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
