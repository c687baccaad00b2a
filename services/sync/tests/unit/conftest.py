"""sync's repositories in memory, behind the devkit's fake unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_sync.domain.apikeys import ApiKeyInfo, key_id
from petportal_sync.domain.batch import BatchPlan, ClinicData, RecordKey, State, StoredRecord
from petportal_sync.domain.booking import Booking, Slot
from petportal_sync.domain.clinics import Clinic, ClinicRegistration
from petportal_sync.domain.erasure import client_traces
from petportal_sync.domain.outbound import OutboundItem, OutboundStatus
from petportal_sync.domain.records import Rejection, StoredRejection, record_text


@dataclass
class InMemorySync:
    clinics: dict[str, ClinicRegistration] = field(default_factory=dict)
    contacts: dict[tuple[str, str], State] = field(default_factory=dict)
    patients: dict[tuple[str, str], State] = field(default_factory=dict)
    programs: dict[tuple[str, str], State] = field(default_factory=dict)
    enrolments: set[tuple[str, str, str]] = field(default_factory=set)
    records: dict[tuple[str, str, str], StoredRecord] = field(default_factory=dict)
    versions: dict[tuple[str, str, str], int] = field(default_factory=dict)
    rejected: list[tuple[str, StoredRejection]] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    keys: dict[str, tuple[str, ApiKeyInfo]] = field(default_factory=dict)

    async def clinic(self, clinic_id: str) -> Clinic | None:
        c = self.clinics.get(clinic_id)
        return Clinic(c.clinic_id, c.name, c.pims) if c else None

    async def clinic_by_key_hash(self, api_key_hash: str) -> Clinic | None:
        key = self.keys.get(api_key_hash)
        if key is None or not key[1].valid(datetime.now(UTC)):
            return None
        return await self.clinic(key[0])

    async def add_clinic(self, clinic: ClinicRegistration) -> bool:
        if clinic.clinic_id in self.clinics:
            return False
        self.clinics[clinic.clinic_id] = clinic
        await self.add_api_key(clinic.clinic_id, clinic.api_key_hash)
        return True

    async def add_api_key(
        self, clinic_id: str, api_key_hash: str, *, overlap: timedelta | None = None
    ) -> None:
        now = datetime.now(UTC)
        if overlap is not None:
            for key, (owner, info) in list(self.keys.items()):
                if owner == clinic_id and info.valid(now + overlap):
                    self.keys[key] = (owner, replace(info, expires_at=now + overlap))
        self.keys[api_key_hash] = (clinic_id, ApiKeyInfo(key_id(api_key_hash), now, None, None))

    async def revoke_api_key(self, clinic_id: str, api_key_id: str) -> bool:
        for key, (owner, info) in list(self.keys.items()):
            if owner == clinic_id and info.key_id == api_key_id:
                self.keys[key] = (owner, replace(info, revoked_at=info.revoked_at or datetime.now(UTC)))
                return True
        return False

    async def api_keys(self, clinic_id: str) -> list[ApiKeyInfo]:
        return [info for owner, info in self.keys.values() if owner == clinic_id]

    async def lock_clinic(self, clinic_id: str) -> None:
        self.locked.append(clinic_id)

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
        def of(stored: dict[tuple[str, str], State], ids: Collection[str]) -> dict[str, State]:
            return {i: dict(stored[(clinic_id, i)]) for i in ids if (clinic_id, i) in stored}

        clinic = self.clinics.get(clinic_id)
        return ClinicData(
            contacts=of(self.contacts, client_ids),
            patients=of(self.patients, patient_ids),
            programs=of(self.programs, program_codes),
            enrolments={e for e in enrolments if (clinic_id, *e) in self.enrolments},
            records={k: self.records[(clinic_id, *k)] for k, _ in records if (clinic_id, *k) in self.records},
            versions={(kind, i): v for (c, kind, i), v in self.versions.items() if c == clinic_id},
            timezone=clinic.timezone if clinic else "UTC",
        )

    async def apply(self, clinic_id: str, plan: BatchPlan) -> None:
        for stored, states in (
            (self.contacts, plan.contacts),
            (self.patients, plan.patients),
            (self.programs, plan.programs),
        ):
            for pims_id, state in states.items():
                stored[(clinic_id, pims_id)] = dict(state)
        self.enrolments |= {(clinic_id, client, code) for client, code in plan.enrolments}
        for key, record in plan.records.items():
            self.records[(clinic_id, *key)] = record
        for key, version in plan.versions.items():
            self.versions[(clinic_id, *key)] = version
        for patient in plan.removed_patients:
            self.patients.pop((clinic_id, patient), None)
        for client in plan.removed_contacts:
            self.contacts.pop((clinic_id, client), None)
            for key, patient in list(self.patients.items()):
                if key[0] == clinic_id and patient["client_id"] == client:
                    del self.patients[key]
            for key, record in list(self.records.items()):
                if key[0] == clinic_id and record.client_id == client:
                    del self.records[key]

    async def add_rejections(
        self,
        clinic_id: str,
        rejections: Sequence[Rejection],
        raw_records: Sequence[Any],
        source: str = "canonical",
    ) -> None:
        now = datetime.now(UTC)
        for r in rejections:
            errors = [{"field": e.field, "message": e.message} for e in r.errors]
            stored = StoredRejection(
                uuid.uuid4(), now, r.index, r.kind, record_text(raw_records[r.index]), errors, source
            )
            self.rejected.append((clinic_id, stored))

    async def rejections_by_id(
        self, clinic_id: str, ids: Collection[uuid.UUID] | None
    ) -> list[StoredRejection]:
        return [r for c, r in self.rejected if c == clinic_id and (ids is None or r.id in ids)]

    async def delete_rejections(
        self, clinic_id: str, ids: Collection[uuid.UUID] | None = None, before: datetime | None = None
    ) -> int:
        def doomed(c: str, r: StoredRejection) -> bool:
            return (
                c == clinic_id and (ids is None or r.id in ids) and (before is None or r.received_at < before)
            )

        kept = [(c, r) for c, r in self.rejected if not doomed(c, r)]
        gone = len(self.rejected) - len(kept)
        self.rejected = kept
        return gone

    async def rejections(self, clinic_id: str, limit: int) -> list[StoredRejection]:
        mine = [r for c, r in self.rejected if c == clinic_id]
        return sorted(mine, key=lambda r: (-r.received_at.timestamp(), r.index))[:limit]

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        contact = self.contacts.pop((clinic_id, client_id), None)
        deleted = int(contact is not None)
        traces = client_traces(client_id, *((contact.get("email"), contact.get("phone")) if contact else ()))
        self.versions.pop((clinic_id, "contact", client_id), None)
        for key, patient in list(self.patients.items()):
            if key[0] == clinic_id and patient["client_id"] == client_id:
                del self.patients[key]
                self.versions.pop((clinic_id, "patient", key[1]), None)
                deleted += 1
        for key, record in list(self.records.items()):
            if key[0] == clinic_id and record.client_id == client_id:
                del self.records[key]
                deleted += 1
        enrolments = {e for e in self.enrolments if e[:2] == (clinic_id, client_id)}
        self.enrolments -= enrolments
        kept = [(c, r) for c, r in self.rejected if c != clinic_id or not traces.found_in(r.raw)]
        deleted += len(enrolments) + len(self.rejected) - len(kept)
        self.rejected = kept
        return deleted


@dataclass
class SlotState:
    slot: Slot
    open: bool = True
    held_by: str | None = None
    hold_id: uuid.UUID | None = None
    held_until: datetime | None = None
    booking_id: uuid.UUID | None = None

    def free_for(self, client_id: str, now: datetime) -> bool:
        held = self.held_until is not None and self.held_until > now and self.held_by != client_id
        return self.open and self.booking_id is None and self.slot.starts_at > now and not held


@dataclass
class InMemoryBookings:
    """BookingStore in memory: the same rules as the SQL's conditional updates."""

    sync: InMemorySync
    settings: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    slots: dict[tuple[str, str], SlotState] = field(default_factory=dict)
    bookings: dict[uuid.UUID, Booking] = field(default_factory=dict)
    outbound: InMemoryOutbound | None = None

    def add_slot(self, clinic_id: str, slot_id: str, starts_at: datetime) -> None:
        self.slots[(clinic_id, slot_id)] = SlotState(Slot(clinic_id, slot_id, starts_at, 30, "Exam"))

    async def booking_settings(self, clinic_id: str) -> tuple[str | None, str] | None:
        return self.settings.get(clinic_id)

    async def free_slots(
        self, clinic_id: str, client_id: str, start: datetime, end: datetime, now: datetime, limit: int
    ) -> list[Slot]:
        found = [
            s.slot
            for (c, _), s in self.slots.items()
            if c == clinic_id and s.free_for(client_id, now) and start <= s.slot.starts_at < end
        ]
        return sorted(found, key=lambda s: (s.starts_at, s.slot_id))[:limit]

    async def slot_state(self, clinic_id: str, slot_id: str, now: datetime) -> str:
        s = self.slots.get((clinic_id, slot_id))
        return "taken" if s is not None and s.open and s.slot.starts_at > now else "missing"

    async def hold(
        self, clinic_id: str, client_id: str, slot_id: str, hold_id: uuid.UUID, until: datetime, now: datetime
    ) -> Slot | None:
        for (c, other), s in self.slots.items():
            if c == clinic_id and other != slot_id and s.held_by == client_id:
                s.held_by = s.hold_id = s.held_until = None
        s = self.slots.get((clinic_id, slot_id))
        if s is None or not s.free_for(client_id, now):
            return None
        s.held_by, s.hold_id, s.held_until = client_id, hold_id, until
        return s.slot

    async def release_hold(self, clinic_id: str, client_id: str, hold_id: uuid.UUID) -> bool:
        for (c, _), s in self.slots.items():
            if c == clinic_id and s.held_by == client_id and s.hold_id == hold_id:
                s.held_by = s.hold_id = s.held_until = None
                return True
        return False

    async def take_for(
        self,
        clinic_id: str,
        client_id: str,
        slot_id: str,
        patient_id: str,
        booking_id: uuid.UUID,
        now: datetime,
    ) -> Slot | None:
        if await self.why_not(clinic_id, client_id, slot_id, patient_id, now) != "free":
            return None
        s = self.slots[(clinic_id, slot_id)]
        s.booking_id, s.held_by, s.hold_id, s.held_until = booking_id, None, None, None
        return s.slot

    async def why_not(
        self, clinic_id: str, client_id: str, slot_id: str, patient_id: str, now: datetime
    ) -> str:
        settings = self.settings.get(clinic_id)
        if settings is None:
            return "clinic"
        if settings[0] != "direct":
            return "mode"
        if not await self.owns_patient(clinic_id, client_id, patient_id):
            return "patient"
        s = self.slots.get((clinic_id, slot_id))
        if s is None or not s.open or s.slot.starts_at <= now:
            return "slot"
        return "free" if s.free_for(client_id, now) else "taken"

    async def free(self, clinic_id: str, booking_id: uuid.UUID, *, still_open: bool) -> None:
        for (c, _), s in self.slots.items():
            if c == clinic_id and s.booking_id == booking_id:
                s.booking_id = None
                s.open = s.open and still_open

    async def owns_patient(self, clinic_id: str, client_id: str, patient_id: str) -> bool:
        patient = self.sync.patients.get((clinic_id, patient_id))
        return patient is not None and patient["client_id"] == client_id and not patient.get("deceased")

    async def appointment(
        self, clinic_id: str, appointment_id: str
    ) -> tuple[str | None, dict[str, Any]] | None:
        record = self.sync.records.get((clinic_id, "appointment", appointment_id))
        return (record.client_id, record.state) if record else None

    async def add(self, booking: Booking) -> None:
        self.bookings[booking.id] = replace(booking)

    async def get(self, clinic_id: str, booking_id: uuid.UUID, *, lock: bool = False) -> Booking | None:
        found = self.bookings.get(booking_id)
        return replace(found) if found is not None and found.clinic_id == clinic_id else None

    async def save(self, booking: Booking) -> None:
        self.bookings[booking.id] = replace(booking)

    async def for_clients(self, memberships: Collection[Any], limit: int) -> list[Booking]:
        mine = {(m.clinic_id, m.client_id) for m in memberships}
        found = [replace(b) for b in self.bookings.values() if (b.clinic_id, b.client_id) in mine]
        return sorted(found, key=lambda b: b.created_at, reverse=True)[:limit]

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        gone = [b for b in self.bookings.values() if (b.clinic_id, b.client_id) == (clinic_id, client_id)]
        for booking in gone:
            await self.free(clinic_id, booking.id, still_open=True)
            del self.bookings[booking.id]
        for (c, _), s in self.slots.items():
            if c == clinic_id and s.held_by == client_id:
                s.held_by = s.hold_id = s.held_until = None
        return len(gone) + (await self.outbound.erase_client(clinic_id, client_id) if self.outbound else 0)


@dataclass
class InMemoryOutbound:
    items: dict[uuid.UUID, OutboundItem] = field(default_factory=dict)
    next_seq: int = 1

    def _seq(self) -> int:
        self.next_seq += 1
        return self.next_seq - 1

    async def add(self, item: OutboundItem) -> bool:
        if item.id in self.items:
            return False
        self.items[item.id] = replace(item, seq=self._seq())
        return True

    async def get(self, clinic_id: str, item_id: uuid.UUID, *, lock: bool = False) -> OutboundItem | None:
        found = self.items.get(item_id)
        return replace(found) if found is not None and found.clinic_id == clinic_id else None

    async def save(self, item: OutboundItem, *, requeue: bool = False) -> None:
        self.items[item.id] = replace(item, seq=self._seq() if requeue else self.items[item.id].seq)

    async def pending(self, clinic_id: str, after: int, limit: int) -> list[OutboundItem]:
        found = [
            replace(i)
            for i in self.items.values()
            if i.clinic_id == clinic_id and i.status is OutboundStatus.PENDING and i.seq > after
        ]
        return sorted(found, key=lambda i: i.seq)[:limit]

    async def for_clinic(
        self, clinic_id: str, status: OutboundStatus | None, limit: int
    ) -> list[OutboundItem]:
        found = [
            replace(i) for i in self.items.values() if i.clinic_id == clinic_id and status in (None, i.status)
        ]
        return sorted(found, key=lambda i: i.seq, reverse=True)[:limit]

    async def backlog(self) -> tuple[dict[str, int], datetime | None]:
        waiting = [
            i for i in self.items.values() if i.status in (OutboundStatus.PENDING, OutboundStatus.FLAGGED)
        ]
        counts = {s: sum(1 for i in waiting if i.status.value == s) for s in ("pending", "flagged")}
        pending = [i.created_at for i in waiting if i.status is OutboundStatus.PENDING]
        return counts, min(pending, default=None)

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        gone = [k for k, i in self.items.items() if (i.clinic_id, i.client_id) == (clinic_id, client_id)]
        for key in gone:
            del self.items[key]
        return len(gone)


@dataclass
class InMemoryRepositories:
    sync: InMemorySync = field(default_factory=InMemorySync)
    outbound: InMemoryOutbound = field(default_factory=InMemoryOutbound)
    bookings: InMemoryBookings = field(init=False)

    def __post_init__(self) -> None:
        self.bookings = InMemoryBookings(self.sync, outbound=self.outbound)


@pytest.fixture
def repositories() -> InMemoryRepositories:
    return InMemoryRepositories()


@pytest.fixture
def uow(repositories: InMemoryRepositories) -> FakeUnitOfWork[InMemoryRepositories]:
    return FakeUnitOfWork(repositories)
