"""Rate limits on `limits`' fixed-window strategy, counted in a storage every replica can share.

`RATE_LIMIT_STORAGE_URL` chooses the storage (`storage_from_url`):
- `postgresql`: the service's own database, table `rate_limits` (created by the service's migrations).
  Counters hold across replicas and can be cleared from outside the process (a CLI command).
- `memory://`: this process only. Each replica counts on its own and nothing outside can clear a
  counter: for development, tests and a single replica.
- any other `limits` storage URI, such as `redis://host:6379/0` (`async+` is added when missing).

Whatever the storage, a key is stored as `namespace`, the SHA-256 of the identifier and the limit:
never an email address or a client address as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from limits import parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string

from .logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.sql import Executable

    from .service import ServiceRuntime

__all__ = ["MemoryStorage", "PostgresStorage", "RateLimiter", "rate_limit_storage", "storage_from_url"]

log = get_logger(__name__)

POSTGRESQL = "postgresql"
# A Redis that does not answer must not hold a request for long (overridable in the URL's query).
REDIS_TIMEOUT_SECONDS = 0.5
PRUNE_INTERVAL_SECONDS = 300.0


class RateLimiter:
    """One limit (such as `5/minute`) per key in `namespace`. A key's window starts at its first hit and
    lasts the limit's period; once `amount` hits are counted in it, the next ones are refused until it
    ends. Every limiter on the same storage (other replicas included) shares the counts.

    With `fail_open`, a storage that cannot be reached lets requests through (with a warning in the
    log) instead of failing them.
    """

    def __init__(self, storage: Storage, limit: str, *, namespace: str, fail_open: bool = False) -> None:
        self.storage = storage
        self.limit = parse(limit)
        self.namespace = namespace
        self._strategy = FixedWindowRateLimiter(storage)
        self._fail_open = fail_open
        self._warned_at = -math.inf

    def _identifiers(self, key: str) -> tuple[str, str]:
        return self.namespace, hashlib.sha256(key.encode()).hexdigest()

    async def hit(self, key: str) -> int | None:
        """Counts one hit; None when allowed, else the whole seconds to wait (for `Retry-After`)."""
        identifiers = self._identifiers(key)
        try:
            if await self._strategy.hit(self.limit, *identifiers):
                return None
            stats = await self._strategy.get_window_stats(self.limit, *identifiers)
        except StorageError as exc:
            if not self._fail_open:
                raise
            if time.monotonic() - self._warned_at > 10:
                self._warned_at = time.monotonic()
                log.warning("rate limit storage unavailable; requests allowed", error=repr(exc.storage_error))
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def clear(self, key: str) -> None:
        """Forgets the key's hits: its next hit starts a new window."""
        await self._strategy.clear(self.limit, *self._identifiers(key))


class PostgresStorage(Storage):
    """A `limits` storage (fixed window: `incr`, `get`, `get_expiry`, `clear`, `reset`, `check`) on the
    `rate_limits` table. One statement per call, timed by the database's clock, so the counters are the
    same for every process on that database."""

    def __init__(self, engine: AsyncEngine, *, wrap_exceptions: bool = True) -> None:
        # SQLAlchemy is imported here, not at the top: a service without a database never needs it.
        from sqlalchemy import Integer, Interval, String, bindparam, case, delete, extract, func, select
        from sqlalchemy.dialects.postgresql import insert
        from sqlalchemy.exc import SQLAlchemyError

        from .tables import rate_limits as t

        super().__init__(wrap_exceptions=wrap_exceptions)
        self.engine = engine
        self._errors = (SQLAlchemyError, OSError)
        key = bindparam("key", type_=String())
        now = func.now()
        new = insert(t).values(
            key=key,
            count=bindparam("amount", type_=Integer()),
            expires_at=now + bindparam("expiry", type_=Interval()),
        )
        expired = t.c.expires_at <= now
        # An expired row is reused as a new window; the SET expressions read the row as it was.
        self._incr: Executable = new.on_conflict_do_update(
            index_elements=[t.c.key],
            set_={
                "count": case((expired, new.excluded.count), else_=t.c.count + new.excluded.count),
                "expires_at": case((expired, new.excluded.expires_at), else_=t.c.expires_at),
            },
        ).returning(t.c.count)
        live = (t.c.key == key) & (t.c.expires_at > now)
        self._get: Executable = select(t.c.count).where(live)
        self._get_expiry: Executable = select(extract("epoch", t.c.expires_at)).where(live)
        self._clear: Executable = delete(t).where(t.c.key == key)
        self._reset: Executable = delete(t)
        self._prune: Executable = delete(t).where(expired)
        self._ping: Executable = select(1)

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return self._errors

    async def _write(self, statement: Executable, **params: Any) -> Any:
        async with self.engine.begin() as conn:
            return await conn.execute(statement, params)

    async def _scalar(self, statement: Executable, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(statement, params)).scalar()

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        result = await self._write(self._incr, key=key, amount=amount, expiry=timedelta(seconds=expiry))
        return int(result.scalar_one())

    async def get(self, key: str) -> int:
        return int(await self._scalar(self._get, key=key) or 0)

    async def get_expiry(self, key: str) -> float:
        expires = await self._scalar(self._get_expiry, key=key)
        return time.time() if expires is None else float(expires)

    async def check(self) -> bool:
        try:
            await self._scalar(self._ping)
        except self._errors:
            return False
        return True

    async def reset(self) -> int | None:
        return int((await self._write(self._reset)).rowcount)

    async def clear(self, key: str) -> None:
        await self._write(self._clear, key=key)

    async def prune(self) -> int:
        """Deletes the rows of ended windows; returns how many."""
        return int((await self._write(self._prune)).rowcount)

    async def prune_periodically(self, stop: asyncio.Event) -> None:
        """A runtime background task: the table keeps only live windows."""
        while not stop.is_set():
            try:
                await self.prune()
            except self._errors as exc:
                log.warning("rate limit pruning failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PRUNE_INTERVAL_SECONDS)


def storage_from_url(url: str, engine: AsyncEngine | None = None) -> Storage:
    """The storage `RATE_LIMIT_STORAGE_URL` names (see the module's docstring)."""
    if url == POSTGRESQL:
        if engine is None:
            raise ValueError("RATE_LIMIT_STORAGE_URL=postgresql needs the service's own database")
        return PostgresStorage(engine)
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise ValueError(f"RATE_LIMIT_STORAGE_URL must be {POSTGRESQL} or a storage URI such as memory://")
    if not scheme.startswith("async+"):
        url, scheme = f"async+{url}", f"async+{scheme}"
    options: dict[str, str | float] = {}
    if scheme.startswith(("async+redis", "async+rediss")):
        # The `redis` client (pinned), not `limits`' default for Redis (coredis).
        options = {
            "implementation": "redispy",
            "socket_timeout": REDIS_TIMEOUT_SECONDS,
            "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        }
    try:
        storage = storage_from_string(url, wrap_exceptions=True, **options)
    except ConfigurationError as exc:
        raise ValueError(f"RATE_LIMIT_STORAGE_URL: {exc}") from None
    if not isinstance(storage, Storage):
        raise ValueError(f"RATE_LIMIT_STORAGE_URL: {scheme} is not an asyncio storage")
    return storage


def rate_limit_storage(runtime: ServiceRuntime) -> Storage:
    """The service's storage, from its settings; the PostgreSQL one prunes itself while the service runs."""
    storage = storage_from_url(runtime.settings.rate_limit_storage_url, runtime.engine)
    if isinstance(storage, PostgresStorage):
        runtime.background.append(storage.prune_periodically)
    return storage
