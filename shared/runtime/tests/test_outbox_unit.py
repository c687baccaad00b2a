"""The relay loop on its own (its database work stubbed): when it relays."""

from __future__ import annotations

import asyncio

import pytest

from petportal_runtime.outbox import OutboxRelay

pytestmark = pytest.mark.unit


async def test_a_commit_during_a_relay_pass_is_relayed_at_once_not_a_poll_later() -> None:
    relay = OutboxRelay(None, None, poll_interval=60)  # type: ignore[arg-type]  (nothing reaches them)
    passes = 0
    second_pass = asyncio.Event()

    async def relay_once() -> int:
        nonlocal passes
        passes += 1
        if passes == 1:
            relay.wake()  # a commit lands while the pass runs, after its read of the outbox
        else:
            second_pass.set()
        return 0

    async def purge(_now: object) -> int:
        return 0

    relay.relay_once = relay_once  # type: ignore[method-assign]
    relay.purge = purge  # type: ignore[method-assign, assignment]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.wait_for(second_pass.wait(), 10)  # well within the 60 s poll
    finally:
        stop.set()
        relay.wake()
        await asyncio.wait_for(task, 10)
    assert passes >= 2
