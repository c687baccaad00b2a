"""The service's own PostgreSQL database: one async engine, one session per unit of work."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Table, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from .unavailable import Dependency

SessionFactory = async_sessionmaker[AsyncSession]


def make_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    timeout: float = 2.0,
    application_name: str | None = None,
    pre_ping: bool = True,
) -> AsyncEngine:
    """Every wait on the database is bounded by `timeout` seconds: connecting, each statement, and
    waiting for a pooled connection. A stalled server therefore fails a request within about that,
    and the caller answers 503.

    A pooled connection the server has closed (a restart, a failover, an idle timeout) is dropped when
    it is checked out, and another one taken: asyncpg sees the server's close on the idle socket, so
    the check costs no round trip (SQLAlchemy's own pre-ping costs three on asyncpg: BEGIN, an empty
    statement, ROLLBACK, on every checkout). `pre_ping=False` leaves even that out, for callers that
    retry on a closed connection themselves.

    SQL parameters never appear in errors or logs (`hide_parameters`): they are personal data.
    `application_name` names the connections in `pg_stat_activity` (and so in `pg_locks`).
    """
    if not database_url:
        raise ValueError("DATABASE_URL is not set")
    connect_args: dict[str, Any] = {"timeout": timeout, "command_timeout": timeout}
    if application_name:
        connect_args["server_settings"] = {"application_name": application_name}
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout,
        hide_parameters=True,
        connect_args=connect_args,
    )
    if pre_ping:
        event.listen(engine.sync_engine.pool, "checkout", _drop_if_closed)
    return engine


def _drop_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: a connection the server closed is discarded and another one checked out."""
    connection = getattr(dbapi_connection, "_connection", None)  # the asyncpg connection
    if connection is not None and connection.is_closed():
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


def replica_name(service: str) -> str:
    """`service@host:pid`: which replica a connection belongs to (the host is the pod's name)."""
    return f"{service}@{socket.gethostname()}:{os.getpid()}"


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block ends, rolls back if it raises."""
    async with factory() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def table_of(model: type[Any]) -> Table:
    """The Core table of a SQLModel table class (for insert ... on conflict, returning, and so on)."""
    table: Table = model.__table__
    return table


# SQLSTATE classes and codes that mean "the server cannot serve now", not "this request is wrong":
# connection exceptions, insufficient resources, operator intervention (shutdown, starting up) and a
# statement cancelled by a timeout.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53")
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57014"})


def _database_cannot_serve(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(exc, "sqlstate", None)
    if not isinstance(sqlstate, str):
        return False
    return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES


DATABASE = Dependency(
    "database",
    (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,  # no pooled connection free within the pool timeout
        sa_exc.DisconnectionError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
    ),
    ("sqlalchemy", "asyncpg"),
    _database_cannot_serve,
    families=(sa_exc.SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError),
)
