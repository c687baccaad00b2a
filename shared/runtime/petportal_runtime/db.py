"""The service's own PostgreSQL database: one async engine, one session per unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]


def make_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    if not database_url:
        raise ValueError("DATABASE_URL is not set")
    # Parameters are names, phone numbers, message bodies: a database error must not print them.
    return create_async_engine(database_url, pool_size=pool_size, pool_pre_ping=True, hide_parameters=True)


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
