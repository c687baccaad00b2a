"""What sync's use cases need of storage: clinics, the PIMS data and the rejected records, in a unit
of work (with the outbox)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from petportal_runtime.auth import ClientRef
from petportal_runtime.uow import UnitOfWork

from ..domain.apikeys import ApiKeyInfo
from ..domain.batch import BatchPlan, ClinicData, RecordKey
from ..domain.booking import Booking, Slot
from ..domain.clinics import Clinic, ClinicRegistration
from ..domain.outbound import OutboundItem, OutboundStatus
from ..domain.records import Rejection, StoredRejection
from ..domain.snapshots import Snapshot


class SyncStore(Protocol):
    async def clinic(self, clinic_id: str) -> Clinic | None: ...

    async def clinic_by_key_hash(self, api_key_hash: str) -> Clinic | None:
        """The clinic of a key that is neither expired nor revoked."""
        ...

    async def add_api_key(
        self, clinic_id: str, api_key_hash: str, *, overlap: timedelta | None = None
    ) -> None:
        """A new key; with `overlap`, the clinic's other valid keys expire that much later."""
        ...

    async def revoke_api_key(self, clinic_id: str, api_key_id: str) -> bool: ...

    async def api_keys(self, clinic_id: str) -> list[ApiKeyInfo]: ...

    async def add_clinic(self, clinic: ClinicRegistration) -> bool:
        """False when the clinic id is taken."""
        ...

    async def lock_clinic(self, clinic_id: str) -> None:
        """Until the unit of work ends, no other batch of this clinic applies."""
        ...

    async def load(
        self,
        clinic_id: str,
        *,
        client_ids: Collection[str],
        patient_ids: Collection[str],
        program_codes: Collection[str],
        enrolments: Collection[tuple[str, str]],
        records: Collection[tuple[RecordKey, str | None]] = (),
    ) -> ClinicData:
        """The stored data these records refer to (only that); clinical records as (key, client_id)."""
        ...

    async def apply(self, clinic_id: str, plan: BatchPlan) -> None: ...

    async def add_rejections(
        self,
        clinic_id: str,
        rejections: Sequence[Rejection],
        raw_records: Sequence[Any],
        source: str = "canonical",
    ) -> None: ...

    async def rejections_by_id(
        self, clinic_id: str, ids: Collection[uuid.UUID] | None
    ) -> list[StoredRejection]:
        """These rejections of the clinic (all for None), oldest first."""
        ...

    async def delete_rejections(
        self, clinic_id: str, ids: Collection[uuid.UUID] | None = None, before: datetime | None = None
    ) -> int: ...

    async def rejections(self, clinic_id: str, limit: int) -> list[StoredRejection]:
        """The clinic's rejected records, newest first (then by index)."""
        ...

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete sync's copy of the client (docs/erasure.md): their contact, patients, enrolments and
        clinical records, the snapshots' mentions of them, and the clinic's rejected records that hold
        their id, email or phone (`domain.erasure`). How many rows were deleted."""
        ...


class SnapshotStore(Protocol):
    async def start(self, clinic_id: str) -> Snapshot: ...

    async def get(self, clinic_id: str, snapshot_id: uuid.UUID, *, lock: bool = False) -> Snapshot | None: ...

    async def add_page(
        self, snapshot_id: uuid.UUID, contacts: Collection[str], patients: Collection[str]
    ) -> None:
        """One more page received, and the contact and patient ids it held."""
        ...

    async def complete(self, snapshot_id: uuid.UUID, at: datetime) -> None: ...

    async def to_reconcile(self, clinic_id: str | None) -> list[tuple[Snapshot, str]]: ...

    async def missing(
        self, clinic_id: str, snapshot_id: uuid.UUID
    ) -> tuple[list[str], list[tuple[str, str]]]: ...

    async def finish(self, clinic_id: str, snapshot_id: uuid.UUID, at: datetime) -> None: ...

    async def expire(self, before: datetime) -> int: ...


class BookingStore(Protocol):
    async def booking_settings(self, clinic_id: str) -> tuple[str | None, str] | None:
        """(booking mode, timezone) of a registered clinic; None for a clinic sync does not know."""
        ...

    async def free_slots(
        self, clinic_id: str, client_id: str, start: datetime, end: datetime, now: datetime, limit: int
    ) -> list[Slot]:
        """Slots free for this client (free, or held by them) starting in [start, end), soonest first."""
        ...

    async def slot_state(self, clinic_id: str, slot_id: str, now: datetime) -> str:
        """ "missing" (no such open future slot) or "taken" (it exists but someone else has it)."""
        ...

    async def hold(
        self, clinic_id: str, client_id: str, slot_id: str, hold_id: uuid.UUID, until: datetime, now: datetime
    ) -> Slot | None:
        """Hold the slot if it is free for the client (their other hold at the clinic goes); None if not."""
        ...

    async def release_hold(self, clinic_id: str, client_id: str, hold_id: uuid.UUID) -> bool: ...

    async def take_for(
        self,
        clinic_id: str,
        client_id: str,
        slot_id: str,
        patient_id: str,
        booking_id: uuid.UUID,
        now: datetime,
    ) -> Slot | None:
        """Book the slot for the client's pet if it is free for them, the clinic takes direct bookings
        and the pet is theirs; None otherwise (atomic)."""
        ...

    async def why_not(
        self, clinic_id: str, client_id: str, slot_id: str, patient_id: str, now: datetime
    ) -> str:
        """Why `take_for` refused: "clinic" (unknown), "mode" (no direct booking), "patient", "slot"
        (no such open future slot) or "taken"."""
        ...

    async def free(self, clinic_id: str, booking_id: uuid.UUID, *, still_open: bool) -> None: ...

    async def owns_patient(self, clinic_id: str, client_id: str, patient_id: str) -> bool: ...

    async def appointment(
        self, clinic_id: str, appointment_id: str
    ) -> tuple[str | None, dict[str, Any]] | None:
        """(client, state) of an appointment as the PIMS last sent it."""
        ...

    async def add(self, booking: Booking) -> None: ...

    async def get(self, clinic_id: str, booking_id: uuid.UUID, *, lock: bool = False) -> Booking | None: ...

    async def save(self, booking: Booking) -> None: ...

    async def for_clients(self, memberships: Collection[ClientRef], limit: int) -> list[Booking]: ...

    async def erase_client(self, clinic_id: str, client_id: str) -> int: ...


class OutboundStore(Protocol):
    async def add(self, item: OutboundItem) -> bool:
        """Queue the item; False (nothing queued) when one with its id is there already."""
        ...

    async def get(self, clinic_id: str, item_id: uuid.UUID, *, lock: bool = False) -> OutboundItem | None: ...

    async def save(self, item: OutboundItem, *, requeue: bool = False) -> None:
        """Write its state; `requeue` gives it a new cursor (a retried item)."""
        ...

    async def pending(self, clinic_id: str, after: int, limit: int) -> list[OutboundItem]:
        """The clinic's unanswered items after the cursor, in cursor order."""
        ...

    async def for_clinic(
        self, clinic_id: str, status: OutboundStatus | None, limit: int
    ) -> list[OutboundItem]:
        """The clinic's items (in one status if asked), newest first."""
        ...

    async def backlog(self) -> tuple[dict[str, int], datetime | None]:
        """Unanswered items of every clinic by status (pending, flagged), and the oldest pending one's
        creation time."""
        ...


class SyncRepositories(Protocol):
    @property
    def sync(self) -> SyncStore: ...

    @property
    def snapshots(self) -> SnapshotStore: ...

    @property
    def bookings(self) -> BookingStore: ...

    @property
    def outbound(self) -> OutboundStore: ...


SyncUnitOfWork = UnitOfWork[SyncRepositories]
