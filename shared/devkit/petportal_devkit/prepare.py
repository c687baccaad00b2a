"""Before the services start: every database migrated and every outbox replayed, in this process.

One process instead of one `python -m petportal_<svc> migrate|replay` per service: the imports are
paid once and the replays share one producer. Production runs the same alembic scripts through each
service's `migrate` command (a Helm hook Job).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from petportal_runtime.catalog import ServiceSpec


def _migrate_all(urls: Mapping[ServiceSpec, str]) -> dict[str, float]:
    from petportal_runtime.migrations import upgrade

    took: dict[str, float] = {}
    for spec, url in urls.items():  # alembic's context is process-global: one at a time
        migrations = spec.migrations_dir()
        if migrations is None:
            continue
        started = time.perf_counter()
        upgrade(migrations, url)
        took[spec.name] = time.perf_counter() - started
    return took


async def migrate_all(urls: Mapping[ServiceSpec, str]) -> dict[str, float]:
    """alembic upgrade head on each service's database; seconds each took."""
    return await asyncio.to_thread(_migrate_all, urls)


async def replay_all(urls: Mapping[ServiceSpec, str], bootstrap: str) -> dict[str, int]:
    """Republish every kept outbox row of every service (consumers' inboxes skip repeats)."""
    from petportal_runtime.broker import OutboxProducer
    from petportal_runtime.db import make_engine, make_session_factory
    from petportal_runtime.outbox import OutboxRelay

    producer = OutboxProducer(bootstrap, "petportal-replay")

    async def replay(url: str) -> int:
        engine = make_engine(url, pool_size=1)
        try:
            return await OutboxRelay(make_session_factory(engine), producer.send_all).replay()
        finally:
            await engine.dispose()

    try:
        counts = await asyncio.gather(*(replay(url) for url in urls.values()))
    finally:
        await producer.close()
    return {spec.name: count for spec, count in zip(urls, counts, strict=True)}
