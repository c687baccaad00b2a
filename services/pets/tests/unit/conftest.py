"""pets' repositories in memory, behind the devkit's fake unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_pets.domain import Clinic, Pet, PetRecord
from petportal_pets.domain.forms import AssignmentStatus, FormAssignment, FormDefinition, FormSubmission
from petportal_pets.domain.refills import RefillRequest, RefillStatus
from petportal_pets.domain.requests import AppointmentRequest, RequestStatus
from petportal_runtime.auth import ClientRef
from petportal_runtime.photos import Photo
from petportal_schemas import ClinicSettingsChanged


@dataclass
class InMemoryPets:
    stored: dict[tuple[str, str], Pet] = field(default_factory=dict)
    gone: set[tuple[str, str]] = field(default_factory=set)

    async def upsert(self, pet: Pet) -> bool:
        current = self.stored.get((pet.clinic_id, pet.patient_id))
        if (
            current is not None
            and current.updated_at
            and pet.updated_at
            and current.updated_at > pet.updated_at
        ):
            return False
        self.stored[(pet.clinic_id, pet.patient_id)] = pet
        self.gone.discard((pet.clinic_id, pet.patient_id))
        return True

    async def mark_gone(
        self, clinic_id: str, client_id: str, patient_id: str | None, at: datetime, deceased_on: date | None
    ) -> None:
        for key, pet in list(self.stored.items()):
            mine = (pet.clinic_id, pet.client_id) == (clinic_id, client_id) and patient_id in (
                None,
                pet.patient_id,
            )
            if mine and (pet.updated_at is None or pet.updated_at <= at):
                self.gone.add(key)
                self.stored[key] = replace(pet, updated_at=at)

    async def for_clients(self, memberships: Collection[ClientRef]) -> list[Pet]:
        pairs = {(m.clinic_id, m.client_id) for m in memberships}
        mine = [
            p
            for key, p in self.stored.items()
            if (p.clinic_id, p.client_id) in pairs and key not in self.gone
        ]
        return sorted(mine, key=lambda p: (p.name, p.clinic_id, p.patient_id))

    async def find(self, memberships: Collection[ClientRef], patient_id: str) -> list[Pet]:
        return [p for p in await self.for_clients(memberships) if p.patient_id == patient_id]


@dataclass
class InMemoryClinics:
    clinics: dict[str, Clinic] = field(default_factory=dict)

    async def register(self, clinic_id: str, name: str, pims: str, timezone: str, at: datetime) -> None:
        current = self.clinics.get(clinic_id, Clinic(clinic_id))
        self.clinics[clinic_id] = replace(current, name=name, pims=pims, timezone=timezone)

    async def set_settings(self, clinic_id: str, settings: ClinicSettingsChanged, at: datetime) -> None:
        self.clinics[clinic_id] = replace(self.clinics.get(clinic_id, Clinic(clinic_id)), settings=settings)

    async def get_many(self, clinic_ids: Collection[str]) -> dict[str, Clinic]:
        return {c: self.clinics.get(c, Clinic(c)) for c in clinic_ids}


@dataclass
class InMemoryRecords:
    stored: dict[tuple[str, str, str], tuple[str, PetRecord, datetime]] = field(default_factory=dict)

    async def upsert(
        self, clinic_id: str, client_id: str, record: PetRecord, at: datetime, *, keep_payload: bool = False
    ) -> None:
        key = (clinic_id, record.kind, record.record_id)
        current = self.stored.get(key)
        if current is not None and current[2] > at:
            return
        if keep_payload and current is not None:
            record = replace(current[1], active=record.active)
        self.stored[key] = (client_id, record, at)

    async def for_pets(
        self, pets: Sequence[Pet], kinds: Collection[str], *, include_unassigned: bool = False
    ) -> dict[tuple[str, str], list[PetRecord]]:
        wanted = {(p.clinic_id, p.patient_id) for p in pets}
        clients = {(p.clinic_id, p.client_id) for p in pets}
        found: dict[tuple[str, str], list[PetRecord]] = {}
        for (clinic_id, kind, _), (client_id, record, _) in self.stored.items():
            if kind not in kinds or not record.active or (clinic_id, client_id) not in clients:
                continue
            if (clinic_id, record.patient_id) in wanted or (include_unassigned and record.patient_id is None):
                found.setdefault((clinic_id, record.patient_id or ""), []).append(record)
        return found


@dataclass
class InMemoryPhotos:
    stored: dict[tuple[str, str], Photo] = field(default_factory=dict)

    async def put(self, clinic_id: str, patient_id: str, photo: Photo, at: datetime) -> None:
        self.stored[(clinic_id, patient_id)] = photo

    async def get(self, clinic_id: str, patient_id: str, *, thumbnail: bool) -> tuple[bytes, str] | None:
        photo = self.stored.get((clinic_id, patient_id))
        return None if photo is None else (photo.thumbnail if thumbnail else photo.jpeg, photo.etag)

    async def delete(self, clinic_id: str, patient_id: str) -> bool:
        return self.stored.pop((clinic_id, patient_id), None) is not None

    async def which(self, pets: Sequence[Pet]) -> set[tuple[str, str]]:
        return {(p.clinic_id, p.patient_id) for p in pets} & set(self.stored)


@dataclass
class InMemoryRequests:
    """Appointment requests; a copy leaves and is saved back, as rows do."""

    stored: dict[uuid.UUID, AppointmentRequest] = field(default_factory=dict)

    async def add(self, request: AppointmentRequest) -> None:
        self.stored[request.id] = replace(request)

    async def get(
        self, clinic_id: str, request_id: uuid.UUID, *, lock: bool = False
    ) -> AppointmentRequest | None:
        found = self.stored.get(request_id)
        return replace(found) if found is not None and found.clinic_id == clinic_id else None

    async def save(self, request: AppointmentRequest) -> None:
        self.stored[request.id] = replace(request)

    async def for_clients(self, memberships: Collection[ClientRef], limit: int) -> list[AppointmentRequest]:
        pairs = {(m.clinic_id, m.client_id) for m in memberships}
        mine = [r for r in self.stored.values() if (r.clinic_id, r.client_id) in pairs]
        return sorted(mine, key=lambda r: r.created_at, reverse=True)[:limit]

    async def for_clinic(
        self, clinic_id: str, status: RequestStatus | None, limit: int
    ) -> list[AppointmentRequest]:
        found = [r for r in self.stored.values() if r.clinic_id == clinic_id and status in (None, r.status)]
        return sorted(found, key=lambda r: r.created_at, reverse=True)[:limit]


@dataclass
class InMemoryRefills:
    """Refill requests, one pending per (clinic, prescription) like the table's unique index."""

    stored: dict[uuid.UUID, RefillRequest] = field(default_factory=dict)

    async def add(self, request: RefillRequest) -> bool:
        if any(
            (r.clinic_id, r.prescription_id, r.status)
            == (request.clinic_id, request.prescription_id, RefillStatus.PENDING)
            for r in self.stored.values()
        ):
            return False
        self.stored[request.id] = replace(request)
        return True

    async def get(self, clinic_id: str, request_id: uuid.UUID, *, lock: bool = False) -> RefillRequest | None:
        found = self.stored.get(request_id)
        return replace(found) if found is not None and found.clinic_id == clinic_id else None

    async def save(self, request: RefillRequest) -> None:
        self.stored[request.id] = replace(request)

    async def for_clients(self, memberships: Collection[ClientRef], limit: int) -> list[RefillRequest]:
        pairs = {(m.clinic_id, m.client_id) for m in memberships}
        mine = [r for r in self.stored.values() if (r.clinic_id, r.client_id) in pairs]
        return sorted(mine, key=lambda r: r.created_at, reverse=True)[:limit]

    async def for_clinic(
        self, clinic_id: str, status: RefillStatus | None, limit: int
    ) -> list[RefillRequest]:
        found = [r for r in self.stored.values() if r.clinic_id == clinic_id and status in (None, r.status)]
        return sorted(found, key=lambda r: r.created_at, reverse=True)[:limit]


@dataclass
class InMemoryForms:
    """Forms (every version), assignments and submissions; copies leave and are saved back."""

    versions: dict[tuple[uuid.UUID, int], FormDefinition] = field(default_factory=dict)
    assignments: dict[uuid.UUID, FormAssignment] = field(default_factory=dict)
    submissions: dict[uuid.UUID, FormSubmission] = field(default_factory=dict)
    # Clients pets knows (a pet of theirs) and appointments: (clinic, client, appointment) → patient.
    clients: set[tuple[str, str]] = field(default_factory=set)
    appointments: dict[tuple[str, str, str], str | None] = field(default_factory=dict)

    async def add_version(self, definition: FormDefinition) -> bool:
        key = (definition.form_id, definition.version)
        if key in self.versions:
            return False
        self.versions[key] = replace(definition)
        return True

    async def definition(
        self, clinic_id: str, form_id: uuid.UUID, version: int | None = None
    ) -> FormDefinition | None:
        found = [
            d
            for (f, v), d in self.versions.items()
            if f == form_id and d.clinic_id == clinic_id and version in (None, v)
        ]
        return replace(max(found, key=lambda d: d.version)) if found else None

    async def definitions(self, clinic_id: str, limit: int) -> list[FormDefinition]:
        latest: dict[uuid.UUID, FormDefinition] = {}
        for d in self.versions.values():
            if d.clinic_id == clinic_id and (
                d.form_id not in latest or latest[d.form_id].version < d.version
            ):
                latest[d.form_id] = d
        return sorted(latest.values(), key=lambda d: (d.title, str(d.form_id)))[:limit]

    async def add_assignment(self, assignment: FormAssignment) -> None:
        self.assignments[assignment.id] = replace(assignment)

    async def assignment(
        self, clinic_id: str, assignment_id: uuid.UUID, *, lock: bool = False
    ) -> FormAssignment | None:
        found = self.assignments.get(assignment_id)
        return replace(found) if found is not None and found.clinic_id == clinic_id else None

    async def save_assignment(self, assignment: FormAssignment) -> None:
        self.assignments[assignment.id] = replace(assignment)

    async def assignments_for_clients(
        self, memberships: Collection[ClientRef], limit: int
    ) -> list[FormAssignment]:
        pairs = {(m.clinic_id, m.client_id) for m in memberships}
        mine = [a for a in self.assignments.values() if (a.clinic_id, a.client_id) in pairs]
        return sorted(mine, key=lambda a: a.assigned_at, reverse=True)[:limit]

    async def assignments_for_clinic(
        self, clinic_id: str, status: AssignmentStatus | None, limit: int
    ) -> list[FormAssignment]:
        found = [
            a for a in self.assignments.values() if a.clinic_id == clinic_id and status in (None, a.status)
        ]
        return sorted(found, key=lambda a: a.assigned_at, reverse=True)[:limit]

    async def add_submission(self, submission: FormSubmission) -> bool:
        if any(s.assignment_id == submission.assignment_id for s in self.submissions.values()):
            return False
        self.submissions[submission.id] = replace(submission)
        return True

    async def submission(self, clinic_id: str, submission_id: uuid.UUID) -> FormSubmission | None:
        found = self.submissions.get(submission_id)
        return replace(found) if found is not None and found.clinic_id == clinic_id else None

    async def knows_client(self, clinic_id: str, client_id: str) -> bool:
        return (clinic_id, client_id) in self.clients

    async def appointment(self, clinic_id: str, client_id: str, appointment_id: str) -> PetRecord | None:
        key = (clinic_id, client_id, appointment_id)
        if key not in self.appointments:
            return None
        return PetRecord("appointment", appointment_id, self.appointments[key], {})


@dataclass
class InMemoryRepositories:
    pets: InMemoryPets = field(default_factory=InMemoryPets)
    clinics: InMemoryClinics = field(default_factory=InMemoryClinics)
    records: InMemoryRecords = field(default_factory=InMemoryRecords)
    photos: InMemoryPhotos = field(default_factory=InMemoryPhotos)
    requests: InMemoryRequests = field(default_factory=InMemoryRequests)
    refills: InMemoryRefills = field(default_factory=InMemoryRefills)
    forms: InMemoryForms = field(default_factory=InMemoryForms)

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """The client's pets (listed or gone), their photos, the client's records and requests."""
        pets = [
            k for k, p in self.pets.stored.items() if (p.clinic_id, p.client_id) == (clinic_id, client_id)
        ]
        photos = [k for k in pets if k in self.photos.stored]
        records = [
            k for k, (client, _, _) in self.records.stored.items() if (k[0], client) == (clinic_id, client_id)
        ]
        for key in photos:
            del self.photos.stored[key]
        for key in records:
            del self.records.stored[key]
        for key in pets:
            del self.pets.stored[key]
            self.pets.gone.discard(key)
        requests = [
            k for k, r in self.requests.stored.items() if (r.clinic_id, r.client_id) == (clinic_id, client_id)
        ]
        refills = [
            k for k, f in self.refills.stored.items() if (f.clinic_id, f.client_id) == (clinic_id, client_id)
        ]
        for request_id in requests:
            del self.requests.stored[request_id]
        for request_id in refills:
            del self.refills.stored[request_id]
        mine = (clinic_id, client_id)
        assignments = [k for k, a in self.forms.assignments.items() if (a.clinic_id, a.client_id) == mine]
        submissions = [k for k, f in self.forms.submissions.items() if (f.clinic_id, f.client_id) == mine]
        for assignment_id in assignments:
            del self.forms.assignments[assignment_id]
        for submission_id in submissions:
            del self.forms.submissions[submission_id]
        return (
            len(pets)
            + len(photos)
            + len(records)
            + len(requests)
            + len(refills)
            + len(assignments)
            + len(submissions)
        )


@pytest.fixture
def repositories() -> InMemoryRepositories:
    return InMemoryRepositories()


@pytest.fixture
def uow(repositories: InMemoryRepositories) -> FakeUnitOfWork[InMemoryRepositories]:
    return FakeUnitOfWork(repositories)
