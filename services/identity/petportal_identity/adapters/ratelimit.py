"""Sign-in throttling per email and per client address (moving window, in memory per process)."""

from __future__ import annotations

import hashlib
import math
import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


class LoginRateLimiter:
    def __init__(self, per_email: str, per_ip: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_email = parse(per_email)
        self._per_ip = parse(per_ip)

    async def hit(self, email: str, ip: str) -> float | None:
        """Counts one attempt; None when allowed, else the seconds to wait before retrying."""
        # Hashed so the limiter's keys hold no email address.
        email_key = hashlib.sha256(email.encode()).hexdigest()
        for item, key in ((self._per_ip, f"ip:{ip}"), (self._per_email, f"email:{email_key}")):
            if not await self._limiter.hit(item, "login", key):
                stats = await self._limiter.get_window_stats(item, "login", key)
                return max(1.0, math.ceil(stats.reset_time - time.time()))
        return None
