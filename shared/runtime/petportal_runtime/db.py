"""The service's own PostgreSQL database: one async engine, one session per unit of work."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]


def make_engine(
    database_url: str, *, pool_size: int = 10, application_name: str | None = None
) -> AsyncEngine:
    """`application_name` names the connections in `pg_stat_activity` (and so in `pg_locks`)."""
    if not database_url:
        raise ValueError("DATABASE_URL is not set")
    connect_args: dict[str, Any] = {}
    if application_name:
        connect_args["server_settings"] = {"application_name": application_name}
    return create_async_engine(
        database_url, pool_size=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


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
