"""Nightly reconciliation: a full snapshot of a clinic's contacts and patients, pushed in pages.

Each page is applied like any batch (so drift is corrected at once, publishing only differences) and
the ids it holds are remembered. The connector then completes the snapshot with the number of pages
it sent; only a complete snapshot whose pages all arrived removes anything — what the clinic's data
holds and the snapshot did not (ClientRemoved / PatientRemoved, reason missing_from_snapshot). A
snapshot that ends half way is never completed and removes nothing; it expires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Removals are applied when the `reconcile` command runs in this hour of the clinic's local day
# (the CronJob runs it hourly), or at once with `--clinic-id`.
RECONCILE_LOCAL_HOUR = 2
SNAPSHOT_EXPIRY = timedelta(hours=36)


@dataclass(frozen=True)
class Snapshot:
    id: uuid.UUID
    clinic_id: str
    started_at: datetime
    pages: int
    completed_at: datetime | None
    reconciled_at: datetime | None


class SnapshotNotFound(LookupError):
    def __init__(self) -> None:
        super().__init__("no such snapshot at this clinic")


class SnapshotClosed(ValueError):
    def __init__(self) -> None:
        super().__init__("this snapshot is already complete: start a new one")


class SnapshotIncomplete(ValueError):
    def __init__(self, expected: int, received: int) -> None:
        super().__init__(
            f"the snapshot has {received} page(s), not the {expected} announced: it removes nothing; "
            "send the missing pages or start a new snapshot"
        )


def due_for_reconciliation(timezone: str, now: datetime) -> bool:
    """Whether `now` falls in the clinic's nightly reconciliation hour, in its own timezone."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).hour == RECONCILE_LOCAL_HOUR
