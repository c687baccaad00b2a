"""Kafka wiring on FastStream: the broker, the outbox sender, consumers with inbox-friendly retries
and dead-lettering of events that do not parse or validate."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord
from aiokafka import errors as kafka_errors
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from petportal_schemas import Envelope, Event, parse_payload, topics

from . import telemetry
from .logging import get_logger
from .settings import ServiceSettings
from .unavailable import Dependency

if TYPE_CHECKING:
    from .outbox import SendRecord

log = get_logger(__name__)

EventHandler = Callable[[Envelope, Event], Awaitable[None]]
BatchHandler = Callable[[list[tuple[Envelope, Event]]], Awaitable[None]]


class PermanentEventError(Exception):
    """The event is well-formed but can never be applied (e.g. it names an unknown program)."""


def make_broker(settings: ServiceSettings) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=False,
        client_id=f"petportal-{settings.service_name}",
        middlewares=[KafkaTelemetryMiddleware()],
        logger=logging.getLogger(f"petportal.{settings.service_name}.broker"),
    )


def outbox_sender(broker: KafkaBroker) -> SendRecord:
    async def send(value: bytes, topic: str, key: bytes, headers: dict[str, str]) -> Awaitable[Any]:
        return await broker.publish(value, topic, key=key, headers=headers, no_confirm=True)

    return send


_dead_letters = telemetry.meter("broker").create_counter(
    "petportal_dead_letters", description="events sent to the dead-letter topic"
)


async def dead_letter(
    broker: KafkaBroker, record: ConsumerRecord[Any, Any], reason: str, consumer: str
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
    _dead_letters.add(1, {"consumer": consumer})


def parse_record(
    record: ConsumerRecord[Any, Any], event_types: Collection[str]
) -> tuple[Envelope, Event] | None:
    """The envelope and event, or None when this consumer does not handle the event's type.

    Raises ValueError with a readable reason when the record is malformed.
    """
    try:
        envelope = Envelope.from_bytes(record.value or b"")
    except ValidationError as exc:
        raise ValueError(f"invalid envelope: {_errors(exc)}") from exc
    if envelope.event_type not in event_types:
        return None
    try:
        return envelope, parse_payload(envelope.event_type, envelope.event_version, envelope.payload)
    except ValidationError as exc:
        raise ValueError(f"invalid {envelope.event_type} v{envelope.event_version}: {_errors(exc)}") from exc
    except ValueError as exc:
        raise ValueError(str(exc)) from exc


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:10]
    )


def _retrying(consumer: str) -> AsyncRetrying:
    """Transient failures (database, network) are retried; past that the message is nacked and
    redelivered, so nothing is lost. PermanentEventError is not retried: it goes to dead letters."""
    return AsyncRetrying(
        retry=retry_if_not_exception_type(PermanentEventError),
        wait=wait_exponential(multiplier=0.1, max=5),
        stop=stop_after_attempt(8),
        reraise=True,
        before_sleep=lambda rs: log.warning(
            "event handler failed; retrying", consumer=consumer, attempt=rs.attempt_number
        ),
    )


def consumer_group(consumer: str) -> str:
    """The Kafka consumer group of a named consumer (tools such as `todo rebuild` commit to it)."""
    return f"petportal-{consumer}"


def consumer_options(settings: ServiceSettings, group_id: str) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        # A fetch waits this long for data on idle partitions; aiokafka's 500 ms default puts half a
        # second between an event and the list that shows it whenever most partitions are quiet.
        "fetch_max_wait_ms": 100,
        "heartbeat_interval_ms": max(300, settings.kafka_session_timeout_ms // 4),
    }


def subscribe_events(
    broker: KafkaBroker,
    settings: ServiceSettings,
    source_topics: Sequence[str],
    *,
    consumer: str,
    handlers: dict[type[Event], EventHandler],
) -> None:
    """One message at a time: parse, dispatch on type, dead-letter what cannot be applied."""
    by_type = {cls.EVENT_TYPE: h for cls, h in handlers.items()}

    @broker.subscriber(  # type: ignore[untyped-decorator]
        *source_topics,
        **consumer_options(settings, consumer_group(consumer)),
        title=f"{consumer}",
        description=f"{consumer} consumes: {', '.join(sorted(by_type))}",
    )
    async def consume(msg: KafkaMessage) -> None:
        record: ConsumerRecord[Any, Any] = msg.raw_message
        try:
            parsed = parse_record(record, by_type)
        except ValueError as exc:
            await dead_letter(broker, record, str(exc), consumer)
            return
        if parsed is None:
            return
        envelope, event = parsed
        try:
            async for attempt in _retrying(consumer):
                with attempt:
                    await by_type[envelope.event_type](envelope, event)
        except PermanentEventError as exc:
            await dead_letter(broker, record, str(exc), consumer)


def subscribe_event_batches(
    broker: KafkaBroker,
    settings: ServiceSettings,
    source_topics: Sequence[str],
    *,
    consumer: str,
    event_types: Collection[type[Event]],
    handler: BatchHandler,
    max_records: int = 1000,
) -> None:
    """A fetched batch at a time, in partition order; the handler applies it in one transaction."""
    names = {cls.EVENT_TYPE for cls in event_types}

    @broker.subscriber(  # type: ignore[untyped-decorator]
        *source_topics,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=50,
        **consumer_options(settings, consumer_group(consumer)),
        title=f"{consumer}",
        description=f"{consumer} consumes: {', '.join(sorted(names))}",
    )
    async def consume(msg: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[Any, Any], ...] = msg.raw_message
        valid: list[tuple[Envelope, Event, ConsumerRecord[Any, Any]]] = []
        for record in records:
            try:
                parsed = parse_record(record, names)
            except ValueError as exc:
                await dead_letter(broker, record, str(exc), consumer)
                continue
            if parsed is not None:
                valid.append((*parsed, record))
        if not valid:
            return
        try:
            async for attempt in _retrying(consumer):
                with attempt:
                    await handler([(envelope, event) for envelope, event, _ in valid])
        except PermanentEventError:
            # Some event in the batch can never be applied: apply them one by one so only that one
            # is dead-lettered and the rest keep their effect (the inbox skips any already applied).
            for envelope, event, record in valid:
                try:
                    async for attempt in _retrying(consumer):
                        with attempt:
                            await handler([(envelope, event)])
                except PermanentEventError as exc:
                    await dead_letter(broker, record, str(exc), consumer)


def document_publisher(broker: KafkaBroker, topic: str, events: Sequence[type[Event]]) -> None:
    """Declare what a service publishes (through its outbox) so the AsyncAPI document shows it."""
    broker.publisher(
        topic,
        title=f"{topic}:publish",
        description="Envelope carrying one of: " + ", ".join(e.EVENT_TYPE for e in events),
        schema=Envelope,
    )


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
