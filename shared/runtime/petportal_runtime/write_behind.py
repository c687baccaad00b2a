"""Batches written behind the consumer: while the store writes batch N, batch N+1 is fetched,
decoded and folded, so the consumer's CPU and the store's overlap instead of adding up.

The guarantees stay those of a consumer that writes and then commits:
- a batch's offsets are committed (explicitly, its own offsets, never the consumer's position) only
  once its write has committed, and in order: batch N+1's after batch N's;
- writes run one at a time, in fetch order: the handler is given `after`, which it awaits before its
  first write (it may read and fold before), so per-key order holds across batches;
- a write that still fails after the retries rewinds its partitions to its first records, and the
  batch fetched behind it is dropped and rewound too: both are fetched again, nothing is lost, and
  the inbox makes the events applied before no-ops;
- at most one batch waits behind the one being written: the consumer does not fetch further ahead.

A crash commits nothing more than a crash of the plain consumer would: what was written but not
committed is delivered again. A handler here must not raise PermanentEventError: events are
validated before it is called (a malformed record is dead-lettered by the delivery middleware).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka import errors as kafka_errors
from faststream.kafka.message import FakeConsumer
from tenacity import AsyncRetrying

from petportal_schemas import Envelope, Event

from .logging import get_logger

log = get_logger(__name__)

Batch = list[tuple[Envelope, Event]]
# handler(batch, after): apply the batch, awaiting `after` before its first write.
BehindHandler = Callable[[Batch, Awaitable[None]], Awaitable[None]]
Records = tuple[ConsumerRecord[Any, Any], ...]


class PreviousBatchFailed(Exception):
    """The batch written before this one failed: this one must not be written (it is fetched again)."""


class BatchRedelivered(Exception):
    """A batch written behind the consumer failed after its retries: it and the batch fetched after it
    are rewound, to be fetched and applied again."""


class After:
    """Awaitable once the previous batch's write has committed; raises PreviousBatchFailed if it failed.
    May be awaited any number of times (each retry of a handler awaits it again), or not at all."""

    def __init__(self, previous: asyncio.Future[None] | None, passed: asyncio.Event | None = None) -> None:
        self._previous = previous
        self._passed = passed

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        previous = self._previous
        if previous is None:
            return
        try:
            await asyncio.shield(previous)
            if self._passed is not None:
                # Wakes the consumer once this batch's write has started (see WriteBehind.submit).
                self._passed.set()
        except asyncio.CancelledError:
            if previous.cancelled():
                raise PreviousBatchFailed("the previous batch was cancelled") from None
            raise
        except Exception as exc:
            raise PreviousBatchFailed(type(exc).__name__) from exc


@dataclass
class _Pending:
    written: asyncio.Future[None]  # the handler is done: the next batch may write
    task: asyncio.Task[None]  # ... and the offsets are committed
    records: Records
    started: asyncio.Event  # the handler is past `after` (or done)


class WriteBehind:
    """One consumer's writes behind it. `submit` is called by the consumer for each fetched batch (or
    part of one); `skip` for records that are not applied (dead-lettered) but whose offsets must be
    committed in their turn."""

    def __init__(self, handler: BehindHandler, consumer: str, retrying: AsyncRetrying) -> None:
        self._handler = handler
        self._consumer = consumer
        self._retrying = retrying
        self._tail: _Pending | None = None

    async def submit(self, batch: Batch, records: Records, kafka_consumer: Any) -> None:
        """Start applying `batch` behind the previous one, and return once the previous one is
        written: the consumer then fetches the next batch while this one is written."""
        previous = self._tail
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        written.add_done_callback(_retrieved)
        started = asyncio.Event()
        task = asyncio.ensure_future(self._apply(batch, records, kafka_consumer, previous, written, started))
        task.add_done_callback(_retrieved)
        self._tail = _Pending(written, task, records, started)
        if previous is None:
            return
        try:
            # Shielded: a consumer stopped meanwhile does not cancel a write half done.
            await asyncio.shield(previous.written)
        except asyncio.CancelledError:
            if not previous.written.cancelled():
                raise
            failure: BaseException = PreviousBatchFailed("cancelled")
        except Exception as exc:
            failure = exc
        else:
            # Not before this batch's write is on its way: fetching and decoding the next batch would
            # otherwise hold the event loop while the store waits for this one.
            await started.wait()
            return
        task.cancel()
        if self._tail is not None and self._tail.task is task:
            self._tail = None
        rewind(kafka_consumer, previous.records + records)
        raise BatchRedelivered(f"the batch before failed: {type(failure).__name__}") from failure

    async def skip(self, records: Records, kafka_consumer: Any) -> None:
        await self.submit([], records, kafka_consumer)

    async def _apply(
        self,
        batch: Batch,
        records: Records,
        kafka_consumer: Any,
        previous: _Pending | None,
        written: asyncio.Future[None],
        started: asyncio.Event,
    ) -> None:
        try:
            after = After(previous.written if previous is not None else None, started)
            if batch:
                await self._retrying(self._handler, batch, after)
            else:
                await after
        except BaseException as exc:
            if not written.done():
                written.set_exception(exc if isinstance(exc, Exception) else PreviousBatchFailed("cancelled"))
            if isinstance(exc, Exception):
                # Fetched again from its first records (the batch behind it is rewound by `submit`).
                rewind(kafka_consumer, records)
                if not isinstance(exc, PreviousBatchFailed):
                    log.error(
                        "batch write failed: fetched again", consumer=self._consumer, error=type(exc).__name__
                    )
            raise
        finally:
            started.set()
        written.set_result(None)
        # The next batch is written meanwhile; the offsets are committed in order.
        if previous is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(previous.task)
        await commit(kafka_consumer, records, self._consumer)

    async def drain(self, seconds: float) -> None:
        """Wait (at most `seconds`) for the batches submitted so far to be written and their
        offsets committed (at shutdown, and in tests)."""
        tail = self._tail
        if tail is None or tail.task.done():
            return
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(tail.task), seconds)


def _retrieved(future: asyncio.Future[None]) -> None:
    # A failure is logged by `_apply` and acted on by the next `submit`; a last batch's failure has no
    # next one to retrieve it, and asyncio would report it again when the future is collected.
    if not future.cancelled():
        future.exception()


def _per_partition(records: Sequence[ConsumerRecord[Any, Any]], *, last: bool) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        known = offsets.get(tp)
        if known is None or (record.offset > known if last else record.offset < known):
            offsets[tp] = record.offset
    return offsets


async def commit(kafka_consumer: Any, records: Records, consumer: str) -> None:
    """Commit the records' own offsets (the next offset of each partition). A commit that fails (the
    partitions were given to another consumer meanwhile) only means the batch is delivered again."""
    if isinstance(kafka_consumer, FakeConsumer):  # the in-memory test broker's: commits nothing
        return
    offsets = {tp: offset + 1 for tp, offset in _per_partition(records, last=True).items()}
    try:
        await kafka_consumer.commit(offsets)
    except kafka_errors.KafkaError as exc:
        log.warning(
            "offsets not committed: the batch will be delivered again",
            consumer=consumer,
            error=type(exc).__name__,
        )


def rewind(kafka_consumer: Any, records: Records) -> None:
    """Seek each partition back to the first of the records (those no longer assigned are skipped)."""
    for tp, offset in _per_partition(records, last=False).items():
        with contextlib.suppress(kafka_errors.IllegalStateError):
            kafka_consumer.seek(tp, offset)


_registry: weakref.WeakKeyDictionary[Any, dict[str, WriteBehind]] = weakref.WeakKeyDictionary()


def register(broker: Any, group_id: str, write_behind: WriteBehind) -> None:
    _registry.setdefault(broker, {})[group_id] = write_behind


def write_behind_of(broker: Any, group_id: str | None) -> WriteBehind | None:
    return _registry.get(broker, {}).get(group_id or "")


async def drain_all(broker: Any, seconds: float = 10.0) -> None:
    for write_behind in list(_registry.get(broker, {}).values()):
        await write_behind.drain(seconds)
