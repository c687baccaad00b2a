"""The batch consumer: each fetched batch goes through apply_batch in one MongoDB transaction.

Kafka offsets are committed by the runtime after this returns, so a crash mid-batch redelivers the
batch, and the inbox makes the events already committed no-ops.
"""

from __future__ import annotations

from datetime import UTC, datetime

from petportal_runtime import telemetry
from petportal_runtime.broker import BatchHandler
from petportal_runtime.logging import get_logger
from petportal_schemas import Envelope, Event

from ..service_layer.projection import ReadModel, apply_batch

log = get_logger(__name__)

_meter = telemetry.meter("todo")
_freshness = _meter.create_histogram(
    "petportal_todo_freshness_seconds",
    unit="s",
    description="time from an event's occurred_at to its application to the To-Do read model",
    # Fresh lists are sub-second: the default buckets (0, 5, 10 s...) would hide everything that matters.
    explicit_bucket_boundaries_advisory=[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
)
_applied = _meter.create_counter(
    "petportal_todo_events_applied", description="events applied to the To-Do read model"
)
_skipped = _meter.create_counter(
    "petportal_todo_events_skipped", description="redelivered events skipped by the inbox"
)


def make_batch_handler(read_model: ReadModel) -> BatchHandler:
    async def project_events(batch: list[tuple[Envelope, Event]]) -> None:
        changes = await apply_batch(read_model, batch)
        now = datetime.now(UTC)
        for event in changes.events:
            _freshness.record(max(0.0, (now - event.occurred_at).total_seconds()))
            _applied.add(1, {"event_type": event.event_type})
            if event.ignored_reason:
                log.warning("event ignored", event_id=str(event.event_id), reason=event.ignored_reason)
        if skipped := len(batch) - len(changes.events):
            _skipped.add(skipped)
            log.info("redelivered events skipped", count=skipped)

    return project_events
