"""Kafka wiring on FastStream: the broker, the outbox's producer, typed consumers, and the one broker
middleware that retries what may succeed later and dead-letters what never will."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, ParamSpec, TypeVar, cast

from aiokafka import ConsumerRecord
from aiokafka import errors as kafka_errors
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.middlewares import BaseMiddleware
from opentelemetry.metrics import CallbackOptions, Observation
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from petportal_schemas import Envelope, Event, parse_payload, registered_events, topics

from . import telemetry
from .logging import get_logger
from .settings import ServiceSettings
from .unavailable import Dependency
from .write_behind import (
    BatchRedelivered,
    BehindHandler,
    PreviousBatchFailed,
    WriteBehind,
    register,
    write_behind_of,
)

if TYPE_CHECKING:
    from faststream import ContextRepo
    from faststream.message import StreamMessage

    from .outbox import OutgoingRecord

log = get_logger(__name__)

E = TypeVar("E", bound=Event)
D = TypeVar("D")
P = ParamSpec("P")
R = TypeVar("R")
BatchHandler = Callable[[list[tuple[Envelope, Event]]], Awaitable[None]]


class PermanentEventError(Exception):
    """The event is well-formed but can never be applied (e.g. it names an unknown program)."""


class InvalidEventError(PermanentEventError, ValueError):
    """The message does not parse or validate as an event. `index`: its position in a fetched batch;
    `kind`: which check it failed (a dead letter's bounded `reason` label)."""

    def __init__(self, reason: str, index: int | None = None, *, kind: str = "invalid_event") -> None:
        super().__init__(reason)
        self.index = index
        self.kind = kind


# The `reason` label of petportal_dead_letters_total: a bounded class of the reason, whose full
# text is in the dead letter's `reason` header and in the log.
DEAD_LETTER_REASONS = ("invalid_envelope", "invalid_event", "unknown_event", "rejected")


def dead_letter_reason(exc: PermanentEventError) -> str:
    """invalid_envelope / invalid_event / unknown_event for what does not parse, rejected for a
    well-formed event the consumer can never apply."""
    return exc.kind if isinstance(exc, InvalidEventError) else "rejected"


def make_broker(settings: ServiceSettings, *, delivery: DeadLetterMiddleware | None = None) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=False,
        client_id=f"petportal-{settings.service_name}",
        # Telemetry first: its span covers the retries and the dead-letter publish.
        middlewares=[KafkaTelemetryMiddleware(), delivery or DeadLetterMiddleware()],
        logger=logging.getLogger(f"petportal.{settings.service_name}.broker"),
        # FastStream's "Received" and "Processed" lines for every message (or batch) name nothing
        # (no topic, partition or offset reach our JSON lines) and cost two log records an event:
        # seen with LOG_LEVEL=DEBUG. A handler's failure is still logged as an error.
        log_level=logging.DEBUG,
    )


class OutboxProducer:
    """The outbox relay's Kafka producer: aiokafka's own, with the broker's guarantees (`acks=all`,
    the key's partition) and without FastStream's per-message middlewares. The relay traces a
    batch with one span (`OutboxRelay`), and each record carries its event's own trace context.
    Started by the first send, so a broker that is down delays the relay, never the service."""

    def __init__(self, bootstrap_servers: str, client_id: str) -> None:
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._producer: Any = None
        self._starting = asyncio.Lock()

    async def _started(self) -> Any:
        async with self._starting:
            if self._producer is None:
                from aiokafka import AIOKafkaProducer

                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=False,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        """Send the records, each to its key's partition (the partitioner of `producer.send`), and
        return once the broker has acknowledged them all. A partition's records go in the order
        given, in aiokafka batches (`send_batch`): one future a batch rather than one a record."""
        from aiokafka.partitioner import DefaultPartitioner

        producer = self._producer or await self._started()
        partitioner = DefaultPartitioner()
        partitions: dict[str, list[int]] = {}
        placed: dict[tuple[str, bytes], int] = {}
        open_batches: dict[tuple[str, int], Any] = {}
        acks: list[Awaitable[Any]] = []
        for topic, key, value, headers in records:
            partition = placed.get((topic, key))
            if partition is None:
                if topic not in partitions:
                    partitions[topic] = sorted(await producer.partitions_for(topic))
                partition = partitioner(key, partitions[topic], partitions[topic])
                placed[(topic, key)] = partition
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                # Full: it is queued, and the record starts the next one (which takes its first
                # record whatever its size).
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[(topic, partition)] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        for (topic, partition), batch in open_batches.items():
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


def outbox_producer(settings: ServiceSettings) -> OutboxProducer:
    return OutboxProducer(settings.kafka_bootstrap_servers, f"petportal-{settings.service_name}-outbox")


_dead_letters = telemetry.meter("broker").create_counter(
    "petportal_dead_letters", description="events sent to the dead-letter topic, by consumer and reason"
)


def _count_dead_letters_from_zero(consumer: str) -> None:
    """Every consumer exports its dead-letter series at 0 from the start, so the first dead letter
    is an increase (a series that appears at 1 is invisible to rate() and increase())."""
    for reason in DEAD_LETTER_REASONS:
        _dead_letters.add(0, {"consumer": consumer, "reason": reason})


async def dead_letter(
    broker: KafkaBroker,
    record: ConsumerRecord[Any, Any],
    reason: str,
    consumer: str,
    *,
    kind: str = "rejected",
) -> None:
    """Park an event that cannot be applied, with why, where it came from and its raw bytes."""
    log.warning(
        "event dead-lettered",
        consumer=consumer,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=reason[:500],
    )
    await broker.publish(
        record.value or b"",
        topics.DEADLETTER,
        key=record.key,
        headers={
            "reason": reason[:2000],
            "consumer": consumer,
            "source_topic": record.topic,
            "source_partition": str(record.partition),
            "source_offset": str(record.offset),
        },
    )
    _dead_letters.add(1, {"consumer": consumer, "reason": kind})


def decode_envelope(raw: bytes, index: int | None = None) -> Envelope:
    try:
        return Envelope.from_bytes(raw)
    except ValidationError as exc:
        raise InvalidEventError(f"invalid envelope: {_errors(exc)}", index, kind="invalid_envelope") from exc


def event_of(envelope: Envelope, index: int | None = None) -> Event:
    """The envelope's payload as its event model, upcast to the newest version."""
    try:
        return parse_payload(envelope.event_type, envelope.event_version, envelope.payload)
    except ValidationError as exc:
        reason = f"invalid {envelope.event_type} v{envelope.event_version}: {_errors(exc)}"
        raise InvalidEventError(reason, index) from exc
    except ValueError as exc:  # an unknown type or version
        raise InvalidEventError(str(exc), index, kind="unknown_event") from exc


def parse_record(
    record: ConsumerRecord[Any, Any], event_types: Collection[str]
) -> tuple[Envelope, Event] | None:
    """The envelope and event of a raw record, or None when its type is not in `event_types`.

    Raises InvalidEventError (a ValueError) with a readable reason when the record is malformed.
    """
    envelope = decode_envelope(record.value or b"")
    if envelope.event_type not in event_types:
        return None
    return envelope, event_of(envelope)


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:10]
    )


# A fetched batch is decoded in slices, the event loop run between them: a batch written behind the
# consumer (write_behind) waits on store replies meanwhile, which a thousand records decoded at once
# would hold up by milliseconds.
YIELD_EVERY = 100


# FastStream decoders: pydantic parses the bytes straight into the envelope (no intermediate dict),
# and a failure names the record. The handler's annotation (Envelope, list[Envelope]) is then what
# the AsyncAPI document shows. Coroutines, because FastStream runs a plain function in a worker
# thread: a thread hop per message (or batch) for a few microseconds of parsing.
async def _decode_one(msg: StreamMessage[Any]) -> Envelope:
    return decode_envelope(msg.body)


async def _decode_batch(msg: StreamMessage[Any]) -> list[Envelope]:
    body = cast("Sequence[bytes]", msg.body)  # a batch's: one body per record
    return [decode_envelope(body[i], i) async for part in _slices(len(body)) for i in part]


async def _events_of(envelopes: Sequence[Envelope], names: Collection[str]) -> list[tuple[Envelope, Event]]:
    return [
        (envelopes[i], event_of(envelopes[i], i))
        async for part in _slices(len(envelopes))
        for i in part
        if envelopes[i].event_type in names
    ]


async def _slices(size: int) -> AsyncIterator[range]:
    """The indexes 0..size in slices of YIELD_EVERY, the event loop run before each but the first."""
    for start in range(0, size, YIELD_EVERY):
        if start:
            await asyncio.sleep(0)
        yield range(start, min(start + YIELD_EVERY, size))


def consumer_group(consumer: str) -> str:
    """The Kafka consumer group of a named consumer (tools such as `todo rebuild` commit to it)."""
    return f"petportal-{consumer}"


def consumer_of_group(group_id: str | None) -> str:
    return (group_id or "").removeprefix("petportal-")


def consumer_options(
    settings: ServiceSettings, group_id: str, *, fetch_max_wait_ms: int = 100
) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        # A fetch waits this long for data on idle partitions; aiokafka's 500 ms default puts half a
        # second between an event and the list that shows it whenever most partitions are quiet.
        "fetch_max_wait_ms": fetch_max_wait_ms,
        "heartbeat_interval_ms": max(300, settings.kafka_session_timeout_ms // 4),
    }


@dataclass(frozen=True)
class EventRoute:
    """Events of type `event` (older versions upcast to it first) go to `handler`. Made by `on`."""

    event: type[Event]
    handler: Callable[[Envelope, Any], Awaitable[None]]

    async def apply(self, envelope: Envelope) -> None:
        await self.handler(envelope, event_of(envelope))


def on(event: type[E], handler: Callable[[Envelope, E], Awaitable[None]]) -> EventRoute:
    """Route `event` to `handler(envelope, event)`; mypy checks the handler takes that event."""
    newest = max(
        (cls.VERSION for cls in registered_events() if cls.EVENT_TYPE == event.EVENT_TYPE),
        default=event.VERSION,
    )
    if newest != event.VERSION:
        raise ValueError(f"{event.EVENT_TYPE} v{event.VERSION} is not the newest version (v{newest})")
    return EventRoute(event, handler)


def bind(handler: Callable[Concatenate[D, P], R], deps: D) -> Callable[P, R]:
    """`handler` with its first argument (its dependencies) given: a partial that mypy checks."""
    return partial(handler, deps)


def subscribe_events(
    broker: KafkaBroker,
    settings: ServiceSettings,
    source_topics: Sequence[str],
    *,
    consumer: str,
    handlers: Sequence[EventRoute],
) -> None:
    """One envelope at a time, dispatched on its event type; types without a route are skipped."""
    by_type = {route.event.EVENT_TYPE: route for route in handlers}

    async def consume(envelope: Envelope) -> None:
        if route := by_type.get(envelope.event_type):
            await route.apply(envelope)

    _count_dead_letters_from_zero(consumer)
    broker.subscriber(
        *source_topics,
        **consumer_options(settings, consumer_group(consumer)),
        decoder=_decode_one,
        title=consumer,
        description=f"{consumer} consumes: {', '.join(sorted(by_type))}",
    )(consume)


def subscribe_event_batches(
    broker: KafkaBroker,
    settings: ServiceSettings,
    source_topics: Sequence[str],
    *,
    consumer: str,
    event_types: Collection[type[Event]],
    handler: BatchHandler,
    max_records: int = 1000,
    fetch_max_wait_ms: int = 100,
) -> None:
    """A fetched batch at a time, in partition order; the handler applies it in one transaction. (A
    handler may reject events with PermanentEventError here, which one written behind may not.)"""
    names = {cls.EVENT_TYPE for cls in event_types}

    async def consume(envelopes: list[Envelope]) -> None:
        if batch := await _events_of(envelopes, names):
            await handler(batch)

    _subscribe_batches(
        broker, settings, source_topics, consumer, names, consume, max_records, fetch_max_wait_ms
    )


def subscribe_batches_written_behind(
    broker: KafkaBroker,
    settings: ServiceSettings,
    source_topics: Sequence[str],
    *,
    consumer: str,
    event_types: Collection[type[Event]],
    handler: BehindHandler,
    max_records: int = 1000,
    fetch_max_wait_ms: int = 100,
    retrying: AsyncRetrying | None = None,
) -> None:
    """As `subscribe_event_batches`, with each batch written while the next one is fetched and folded
    (see `write_behind`): `handler(batch, after)` awaits `after` before its first write."""
    names = {cls.EVENT_TYPE for cls in event_types}
    behind = WriteBehind(handler, consumer, retrying or retry_policy())
    register(broker, consumer_group(consumer), behind)

    async def consume(
        envelopes: list[Envelope], message: Annotated[KafkaMessage, Context("message")]
    ) -> None:
        await behind.submit(await _events_of(envelopes, names), _records(message), message.consumer)

    _subscribe_batches(
        broker,
        settings,
        source_topics,
        consumer,
        names,
        consume,
        max_records,
        fetch_max_wait_ms,
        # Offsets are committed by the write behind, each batch's own once written.
        ack_policy=AckPolicy.MANUAL,
    )


def _subscribe_batches(
    broker: KafkaBroker,
    settings: ServiceSettings,
    source_topics: Sequence[str],
    consumer: str,
    names: Collection[str],
    consume: Callable[..., Awaitable[None]],
    max_records: int,
    fetch_max_wait_ms: int,
    **options: Any,
) -> None:
    _count_dead_letters_from_zero(consumer)
    broker.subscriber(
        *source_topics,
        batch=True,
        max_records=max_records,
        # A poll that finds nothing is followed by a pause as long (FastStream's): no longer than a
        # fetch's wait, so that an event arriving then is not held up more than a fetch would.
        batch_timeout_ms=min(50, fetch_max_wait_ms),
        **{
            **consumer_options(settings, consumer_group(consumer), fetch_max_wait_ms=fetch_max_wait_ms),
            **options,
        },
        decoder=_decode_batch,
        title=consumer,
        description=f"{consumer} consumes: {', '.join(sorted(names))}",
    )(consume)


def document_publisher(broker: KafkaBroker, topic: str, events: Sequence[type[Event]]) -> None:
    """Declare what a service publishes (through its outbox) so the AsyncAPI document shows it."""
    broker.publisher(
        topic,
        title=f"{topic}:publish",
        description="Envelope carrying one of: " + ", ".join(e.EVENT_TYPE for e in events),
        schema=Envelope,
    )


_lag_samplers: weakref.WeakSet[ConsumerLag] = weakref.WeakSet()


def _observe_lag(_options: CallbackOptions) -> Iterable[Observation]:
    for sampler in list(_lag_samplers):
        for (group, topic, partition), lag in list(sampler.lag.items()):
            yield Observation(lag, {"consumer_group": group, "topic": topic, "partition": partition})


telemetry.meter("broker").create_observable_gauge(
    "petportal_kafka_consumer_lag",
    callbacks=[_observe_lag],
    description="records not yet consumed per assigned partition: high watermark - consumer position",
)


class ConsumerLag:
    """petportal_kafka_consumer_lag: for every partition this process's consumers are assigned, the
    records between the consumer's position and the partition's high watermark (as of its last
    fetch), by consumer group, topic and partition. Sampled every `interval` seconds by `run`."""

    def __init__(self, broker: KafkaBroker, *, interval: float = 5.0) -> None:
        self._broker = broker
        self._interval = interval
        self.lag: dict[tuple[str, str, int], int] = {}
        _lag_samplers.add(self)

    async def sample(self) -> None:
        lag: dict[tuple[str, str, int], int] = {}
        for subscriber in self._broker.subscribers:
            group = getattr(subscriber, "group_id", None)
            consumers = getattr(subscriber, "consumer_subgroup", None) or [
                getattr(subscriber, "consumer", None)
            ]
            for consumer in consumers:
                if not group or consumer is None:
                    continue
                for tp in consumer.assignment():
                    highwater = consumer.highwater(tp)
                    if highwater is None:
                        continue  # not fetched yet
                    try:
                        position = await asyncio.wait_for(consumer.position(tp), 1)
                    except (TimeoutError, kafka_errors.KafkaError):
                        continue
                    lag[(group, tp.topic, tp.partition)] = max(0, highwater - position)
        self.lag = lag

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sample()
            except Exception:  # a metric must never stop the service
                log.exception("consumer lag sampling failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)


BROKER = Dependency(
    "broker",
    (
        kafka_errors.KafkaConnectionError,
        kafka_errors.KafkaTimeoutError,
        kafka_errors.NodeNotReadyError,
        kafka_errors.RequestTimedOutError,
    ),
    ("aiokafka", "faststream"),
    families=(kafka_errors.KafkaError,),
)


def retry_policy(attempts: int = 8, max_wait: float = 5.0) -> AsyncRetrying:
    """Retries of a failure that may pass, with exponential backoff; never of an event that can never
    be applied, nor of a batch that must be fetched again."""
    return AsyncRetrying(
        retry=retry_if_not_exception_type((PermanentEventError, PreviousBatchFailed, BatchRedelivered)),
        wait=wait_exponential(multiplier=0.1, max=max_wait),
        stop=stop_after_attempt(attempts),
        reraise=True,
    )


class DeadLetterMiddleware:
    """Every consumer's retries and dead letters, as one broker middleware.

    A failure that may pass (database, network) is retried `attempts` times with exponential backoff;
    past that it propagates, the message is nacked and redelivered, so nothing is lost (the inbox
    makes the redelivery harmless). A PermanentEventError, InvalidEventError included (the message
    does not parse or validate), is not retried: the message goes to the dead-letter topic with the
    reason and the consumer carries on. Of a batch only the failing events are parked: it is split
    around the failing record when that is known, in halves otherwise, and the parts are retried in
    order, so the rest keep their effect.
    """

    def __init__(self, *, attempts: int = 8, max_wait: float = 5.0) -> None:
        self._retrying = retry_policy(attempts, max_wait)

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        return _Delivery(msg, context=context, retrying=self._retrying)


class _Delivery(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, retrying: AsyncRetrying) -> None:
        super().__init__(msg, context=context)
        self._retrying = retrying

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        records = _records(msg)
        if not records or records[0].topic == topics.DEADLETTER:
            return await call_next(msg)
        return await self._deliver(call_next, msg, records)

    async def _deliver(
        self,
        call_next: Callable[[StreamMessage[Any]], Awaitable[Any]],
        msg: StreamMessage[Any],
        records: tuple[ConsumerRecord[Any, Any], ...],
    ) -> Any:
        group_id = getattr(self.context.get("handler_"), "group_id", None)
        consumer = consumer_of_group(group_id)
        retrying = self._retrying.copy(
            before_sleep=lambda rs: log.warning(
                "event handler failed; retrying",
                consumer=consumer,
                attempt=rs.attempt_number,
                error=type(rs.outcome.exception()).__name__ if rs.outcome else None,
            )
        )
        try:
            return await retrying(call_next, msg)
        except PermanentEventError as exc:
            broker = self.context.get("broker")
            if len(records) == 1:
                await dead_letter(broker, records[0], str(exc), consumer, kind=dead_letter_reason(exc))
                if (behind := write_behind_of(broker, group_id)) is not None:
                    await behind.skip(records, getattr(msg, "consumer", None))  # committed in its turn
                return None
            at = exc.index if isinstance(exc, InvalidEventError) else None
            for part in _split(len(records), at):
                sub = _sliced(msg, part)
                # The handler's `message` is the part it is given (its records are the ones committed).
                with self.context.scope("message", sub):
                    await self._deliver(call_next, sub, records[part])
            return None


def _records(msg: StreamMessage[Any]) -> tuple[ConsumerRecord[Any, Any], ...]:
    raw = msg.raw_message
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)


def _split(size: int, at: int | None) -> list[slice]:
    if at is not None and 0 <= at < size:
        parts = [slice(0, at), slice(at, at + 1), slice(at + 1, size)]
    else:
        parts = [slice(0, size // 2), slice(size // 2, size)]
    return [p for p in parts if p.start < p.stop]


def _sliced(msg: StreamMessage[Any], part: slice) -> StreamMessage[Any]:
    """The batch message holding only `part` of its records (a copy decodes afresh)."""
    sub = copy.copy(msg)
    sub.raw_message = _records(msg)[part]
    sub.body = msg.body[part]
    sub.batch_headers = msg.batch_headers[part]
    return sub
