"""The batch consumer: each fetched batch goes through apply_batch in one MongoDB transaction, and
its erasure requests are confirmed after it. Batches are written behind the consumer
(petportal_runtime.write_behind): a batch is folded while the one before is written.

Kafka offsets are committed by the runtime after this returns, so a crash mid-batch (or a
confirmation the broker did not acknowledge) redelivers the batch, and the inbox makes the events
already committed no-ops; the confirmations are published again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from petportal_runtime import telemetry
from petportal_runtime.logging import get_logger
from petportal_schemas import Envelope, Event

from ..domain import ERASED
from ..service_layer.projection import Publish, ReadModel, apply_batch

log = get_logger(__name__)

_meter = telemetry.meter("todo")
_freshness = _meter.create_histogram(
    "petportal_todo_freshness_seconds",
    unit="s",
    description="age of the oldest event of each applied batch: how stale the To-Do lists can be",
    # Fresh lists are sub-second: the default buckets (0, 5, 10 s...) would hide everything that matters.
    explicit_bucket_boundaries_advisory=[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
)
_applied = _meter.create_counter(
    "petportal_todo_events_applied", description="events applied to the To-Do read model"
)
_skipped = _meter.create_counter(
    "petportal_todo_events_skipped", description="redelivered events skipped by the inbox"
)


@dataclass(frozen=True)
class Projection:
    """What the consumer works with: the read model, and how erasure confirmations are published."""

    read_model: ReadModel
    publish: Publish


async def project_events(
    projection: Projection, batch: Sequence[tuple[Envelope, Event]], after: Awaitable[None] | None = None
) -> None:
    changes = await apply_batch(projection.read_model, batch, publish=projection.publish, after=after)
    if changes.events:
        # Metrics per batch, not per event: at thousands of events a second the per-event
        # measurements cost more than the projection. Freshness is the batch's oldest event.
        oldest = min(event.occurred_at for event in changes.events)
        _freshness.record(max(0.0, (datetime.now(UTC) - oldest).total_seconds()))
        for event_type, count in Counter(e.event_type for e in changes.events).items():
            _applied.add(count, {"event_type": event_type})
    for event in changes.events:
        if event.ignored_reason == ERASED:  # expected: the client's older events, replays included
            log.info("event ignored", event_id=str(event.event_id), reason=event.ignored_reason)
        elif event.ignored_reason:
            log.warning("event ignored", event_id=str(event.event_id), reason=event.ignored_reason)
    # Added even at 0, so the series exists from the first batch and the first skip is an increase.
    skipped = len(batch) - len(changes.events)
    _skipped.add(skipped)
    if skipped:
        log.info("redelivered events skipped", count=skipped)
