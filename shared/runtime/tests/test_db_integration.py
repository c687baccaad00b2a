"""The service's engine on a real PostgreSQL: a pooled connection the server closed is replaced on
checkout, without a ping round trip, so the request after a restart or a failover does not fail."""

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from petportal_runtime.db import make_engine

pytestmark = pytest.mark.integration


async def test_a_pooled_connection_the_server_closed_is_replaced_on_checkout(make_database) -> None:  # type: ignore[no-untyped-def]
    url = make_database()
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # The server ends the idle pooled connection (as a restart or an idle timeout does).
        admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
            for _ in range(100):  # until the server has ended it (bounded)
                if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", first):
                    break
                await asyncio.sleep(0.02)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)  # the client reads the server's close on the idle socket
        async with engine.connect() as conn:
            second = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
    finally:
        await engine.dispose()
