"""The relay loop on its own (its database work stubbed): when it relays."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from petportal_devkit.testing import passes_when_woken_mid_pass
from petportal_runtime.outbox import OutboxRelay

pytestmark = pytest.mark.unit


async def test_a_commit_during_a_relay_pass_is_relayed_at_once_not_a_poll_later() -> None:
    relay = OutboxRelay(None, None, poll_interval=60)  # type: ignore[arg-type]  (nothing reaches them)

    async def purge(_now: object) -> int:
        return 0

    def replace_pass(one_pass: Callable[..., Awaitable[int]]) -> None:
        relay.relay_once = one_pass  # type: ignore[method-assign]

    relay.purge = purge  # type: ignore[method-assign, assignment]
    # Well within the 60 s poll.
    assert await passes_when_woken_mid_pass(relay.run, relay.wake, replace_pass) >= 2
