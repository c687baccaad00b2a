"""Pieces for consumer unit tests on FastStream's in-memory `TestKafkaBroker`.

The service is wired by its own bootstrap, with `petportal_devkit.fakes.FakeUnitOfWork` for the
database side of a handler (the unit of work and the inbox); the test publishes envelopes on its
broker and looks at what the handlers did. `record_dead_letters` stands in for whoever reads the
dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from petportal_runtime.write_behind import drain_all
from petportal_schemas import Envelope, topics


async def publish_envelope(broker: KafkaBroker, envelope: Envelope) -> None:
    """Publish as the outbox relay does: on the event's topic, with its key and type header."""
    await broker.publish(
        envelope.to_bytes(),
        envelope.topic,
        key=envelope.key.encode(),
        headers={"event_type": envelope.event_type},
    )


async def written(broker: KafkaBroker) -> None:
    """Wait until the batches consumers write behind them (petportal_runtime.write_behind) are written:
    on the in-memory broker a publish returns once the consumer has taken the batch, not written it."""
    await drain_all(broker)


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    consumer: str
    source_topic: str
    value: bytes
    key: bytes | None


def record_dead_letters(broker: KafkaBroker) -> list[DeadLetter]:
    """The dead letters `broker` publishes, in order. Call before `TestKafkaBroker(broker)` starts."""
    parked: list[DeadLetter] = []

    async def park(message: KafkaMessage) -> None:
        headers, record = message.headers, message.raw_message
        assert isinstance(record, ConsumerRecord)
        parked.append(
            DeadLetter(
                reason=headers["reason"],
                consumer=headers["consumer"],
                source_topic=headers["source_topic"],
                value=message.body,
                key=record.key,
            )
        )

    broker.subscriber(topics.DEADLETTER, title="dead letters (test recorder)")(park)
    return parked
