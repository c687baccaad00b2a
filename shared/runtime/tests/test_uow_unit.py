"""`meanwhile`: a store operation and CPU work overlap, and a failed work leaves nothing running."""

from __future__ import annotations

import asyncio

import pytest

from petportal_runtime.uow import meanwhile

pytestmark = pytest.mark.unit


async def test_the_operation_is_sent_before_the_work_runs_and_both_results_come_back() -> None:
    steps: list[str] = []
    answer = asyncio.Event()

    async def operation() -> str:
        steps.append("sent")
        await answer.wait()  # the store working on it
        steps.append("answered")
        return "rows"

    def work() -> int:
        steps.append("work")
        answer.set()
        return 42

    assert await meanwhile(operation(), work) == ("rows", 42)
    assert steps == ["sent", "work", "answered"]


async def test_a_failed_work_cancels_the_operation() -> None:
    cancelled = asyncio.Event()

    async def operation() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def work() -> None:
        raise ValueError("a bug in the work")

    with pytest.raises(ValueError, match="a bug in the work"):
        await meanwhile(operation(), work)
    await asyncio.wait_for(cancelled.wait(), 5)
