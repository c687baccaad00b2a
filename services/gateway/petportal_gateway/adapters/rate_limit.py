"""Per-client-IP request budget (moving window, in memory: one budget per gateway replica)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class ClientRateLimiter:
    """At most `per_minute` requests from one client in any 60 s.

    Each client's hits are a deque of times, oldest first, at most `per_minute` long: a hit drops the
    ones that left the window and appends, in constant time (amortised). The `limits` package's
    in-memory moving window did the same with a list it prepended to, and started an expiry task
    that went through a thread on every hit: a tenth of the gateway's CPU per request. Clients idle
    for a whole window are forgotten once a window.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = clock() + WINDOW_SECONDS

    def hit(self, client: str) -> int | None:
        """Count one request; None when allowed, else the seconds to wait (for Retry-After)."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._hits.get(client)
        if hits is None:
            hits = self._hits[client] = deque()
        leaving = now - WINDOW_SECONDS
        while hits and hits[0] <= leaving:
            hits.popleft()
        if len(hits) >= self._limit:
            return max(1, math.ceil(hits[0] + WINDOW_SECONDS - now))
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        leaving = now - WINDOW_SECONDS
        for client in [c for c, hits in self._hits.items() if not hits or hits[-1] <= leaving]:
            del self._hits[client]
        self._next_sweep = now + WINDOW_SECONDS

    def __len__(self) -> int:
        """Clients currently remembered."""
        return len(self._hits)
