"""Per-client-IP request budget (moving window, in memory: one budget per gateway replica)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


class ClientRateLimiter:
    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, client: str) -> int | None:
        """Count one request; None when allowed, else the seconds to wait (for Retry-After)."""
        if await self._limiter.hit(self._item, "gateway", client):
            return None
        stats = await self._limiter.get_window_stats(self._item, "gateway", client)
        return max(1, math.ceil(stats.reset_time - time.time()))
