"""Alembic glue shared by every service: the async env.py body and a programmatic upgrade."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from .tables import erased_clients, inbox, rate_limit_metadata
from .tables import metadata as runtime_metadata


def create_runtime_tables(bind: Connection) -> None:
    """Outbox and inbox: called from each service's first migration with op.get_bind()."""
    runtime_metadata.create_all(bind)


def create_inbox_purge_index(bind: Connection) -> None:
    """Revision 0002 of each service: the index of the inbox purge. A database created by a newer
    runtime already has it (create_runtime_tables creates the tables as they are now)."""
    for index in inbox.indexes:
        if index.name == "ix_inbox_applied_at":
            index.create(bind, checkfirst=True)


def drop_inbox_purge_index(bind: Connection) -> None:
    for index in inbox.indexes:
        if index.name == "ix_inbox_applied_at":
            index.drop(bind, checkfirst=True)


def create_erased_clients_table(bind: Connection) -> None:
    """The erasure revision of each service: the tombstones the inbox claim reads (a database created
    by a newer runtime already has them)."""
    erased_clients.create(bind, checkfirst=True)


def drop_erased_clients_table(bind: Connection) -> None:
    erased_clients.drop(bind, checkfirst=True)


def drop_runtime_tables(bind: Connection) -> None:
    runtime_metadata.drop_all(bind)


def create_rate_limit_table(bind: Connection) -> None:
    """`rate_limits`, for a service whose RATE_LIMIT_STORAGE_URL is `postgresql` (its own database)."""
    rate_limit_metadata.create_all(bind)


def drop_rate_limit_table(bind: Connection) -> None:
    rate_limit_metadata.drop_all(bind)


def run_env(target_metadata: MetaData, *extra: MetaData) -> None:
    """The body of a service's migrations/env.py; `extra` names runtime tables it has besides the outbox
    and inbox (such as `rate_limit_metadata`)."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    metadata = [target_metadata, runtime_metadata, *extra]

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool, hide_parameters=True)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, revision)
