"""What todo publishes, straight to Kafka: todo has no database, so no outbox. Only its erasure
confirmations, each published again whenever its batch is delivered again (at least once)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from petportal_schemas import Envelope


def headers(envelope: Envelope) -> dict[str, str]:
    """The headers the outbox relay gives an event: its type and its trace context."""
    found = {"event_type": envelope.event_type}
    if envelope.trace.traceparent:
        found["traceparent"] = envelope.trace.traceparent
        if envelope.trace.tracestate:
            found["tracestate"] = envelope.trace.tracestate
    return found


class KafkaPublisher:
    """Publishes on each event's topic with its key, and returns once the broker has acknowledged
    every one (acks=all); raises if one was not, so the caller's batch fails and is redelivered."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def __call__(self, envelopes: Sequence[Envelope]) -> None:
        await asyncio.gather(
            *(
                self._broker.publish(
                    envelope.to_bytes(), envelope.topic, key=envelope.key.encode(), headers=headers(envelope)
                )
                for envelope in envelopes
            )
        )
