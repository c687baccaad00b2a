"""The loop of a background worker woken by whoever gives it work (the outbox relay after a commit,
notify's dispatcher after queueing a delivery), and polling meanwhile for work from elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def run_in_passes(
    one_pass: Callable[[], Awaitable[bool]], wake: asyncio.Event, stop: asyncio.Event, interval: float
) -> None:
    """Call `one_pass` until `stop` is set. It returns True when more work is waiting, and the next
    pass starts at once; otherwise the loop waits for `wake`, `stop` or `interval` seconds.

    `wake` is cleared before each pass, not after: work given while a pass runs (after the pass
    looked for it) starts the next pass at once rather than an interval later."""
    while not stop.is_set():
        wake.clear()
        if await one_pass():
            continue
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
        await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
