"""What pets' use cases need of storage: pets, clinics and the pets' records, in a unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Protocol

from petportal_runtime.auth import ClientRef
from petportal_runtime.photos import Photo
from petportal_runtime.uow import UnitOfWork
from petportal_schemas import ClinicSettingsChanged

from ..domain import Clinic, Pet, PetRecord
from ..domain.forms import AssignmentStatus, FormAssignment, FormDefinition, FormSubmission
from ..domain.refills import RefillRequest, RefillStatus
from ..domain.requests import AppointmentRequest, RequestStatus


class PetStore(Protocol):
    async def upsert(self, pet: Pet) -> bool:
        """Insert or replace the pet's signalment unless a newer one is stored; True if written."""
        ...

    async def mark_gone(
        self, clinic_id: str, client_id: str, patient_id: str | None, at: datetime, deceased_on: date | None
    ) -> None:
        """The pet (all the client's pets when `patient_id` is None) is no longer listed."""
        ...

    async def for_clients(self, memberships: Collection[ClientRef]) -> list[Pet]:
        """The listed pets of these memberships, by name."""
        ...

    async def find(self, memberships: Collection[ClientRef], patient_id: str) -> list[Pet]: ...


class ClinicStore(Protocol):
    async def register(self, clinic_id: str, name: str, pims: str, timezone: str, at: datetime) -> None: ...

    async def set_settings(self, clinic_id: str, settings: ClinicSettingsChanged, at: datetime) -> None: ...

    async def get_many(self, clinic_ids: Collection[str]) -> dict[str, Clinic]:
        """Each clinic, a default one (no capabilities beyond the common) for a clinic not yet known."""
        ...


class PetRecordStore(Protocol):
    async def upsert(
        self, clinic_id: str, client_id: str, record: PetRecord, at: datetime, *, keep_payload: bool = False
    ) -> None: ...

    async def for_pets(
        self, pets: Sequence[Pet], kinds: Collection[str], *, include_unassigned: bool = False
    ) -> dict[tuple[str, str], list[PetRecord]]: ...


class PhotoStore(Protocol):
    async def put(self, clinic_id: str, patient_id: str, photo: Photo, at: datetime) -> None: ...

    async def get(self, clinic_id: str, patient_id: str, *, thumbnail: bool) -> tuple[bytes, str] | None:
        """(JPEG, etag) of the photo or its thumbnail."""
        ...

    async def delete(self, clinic_id: str, patient_id: str) -> bool: ...

    async def which(self, pets: Sequence[Pet]) -> set[tuple[str, str]]: ...


class RequestStore(Protocol):
    async def add(self, request: AppointmentRequest) -> None: ...

    async def get(
        self, clinic_id: str, request_id: uuid.UUID, *, lock: bool = False
    ) -> AppointmentRequest | None:
        """The clinic's request (locked for this unit of work if asked); None otherwise."""
        ...

    async def save(self, request: AppointmentRequest) -> None: ...

    async def for_clients(self, memberships: Collection[ClientRef], limit: int) -> list[AppointmentRequest]:
        """The parent's requests at all their clinics, newest first."""
        ...

    async def for_clinic(
        self, clinic_id: str, status: RequestStatus | None, limit: int
    ) -> list[AppointmentRequest]:
        """The clinic's requests (in one status if asked), newest first."""
        ...


class RefillStore(Protocol):
    async def add(self, request: RefillRequest) -> bool:
        """Store a new request; False (nothing stored) when one for the same prescription is pending."""
        ...

    async def get(self, clinic_id: str, request_id: uuid.UUID, *, lock: bool = False) -> RefillRequest | None:
        """The clinic's request (locked for this unit of work if asked); None otherwise."""
        ...

    async def save(self, request: RefillRequest) -> None:
        """Write the decision and when the parent saw it."""
        ...

    async def for_clients(self, memberships: Collection[ClientRef], limit: int) -> list[RefillRequest]:
        """The parent's requests at all their clinics, newest first."""
        ...

    async def for_clinic(
        self, clinic_id: str, status: RefillStatus | None, limit: int
    ) -> list[RefillRequest]:
        """The clinic's requests (in one status if asked), newest first."""
        ...


class FormStore(Protocol):
    async def add_version(self, definition: FormDefinition) -> bool:
        """Store a version; False (nothing stored) when the form already has this version number."""
        ...

    async def definition(
        self, clinic_id: str, form_id: uuid.UUID, version: int | None = None
    ) -> FormDefinition | None:
        """One version of the clinic's form, the latest when `version` is None; None otherwise."""
        ...

    async def definitions(self, clinic_id: str, limit: int) -> list[FormDefinition]:
        """The latest version of each of the clinic's forms, by title."""
        ...

    async def add_assignment(self, assignment: FormAssignment) -> None: ...

    async def assignment(
        self, clinic_id: str, assignment_id: uuid.UUID, *, lock: bool = False
    ) -> FormAssignment | None:
        """The clinic's assignment (locked for this unit of work if asked); None otherwise."""
        ...

    async def save_assignment(self, assignment: FormAssignment) -> None:
        """Write its status, submission and completion time."""
        ...

    async def assignments_for_clients(
        self, memberships: Collection[ClientRef], limit: int
    ) -> list[FormAssignment]:
        """The parent's assignments at all their clinics, newest first."""
        ...

    async def assignments_for_clinic(
        self, clinic_id: str, status: AssignmentStatus | None, limit: int
    ) -> list[FormAssignment]:
        """The clinic's assignments (in one status if asked), newest first."""
        ...

    async def add_submission(self, submission: FormSubmission) -> bool:
        """Store a submission; False (nothing stored) when its assignment already has one."""
        ...

    async def submission(self, clinic_id: str, submission_id: uuid.UUID) -> FormSubmission | None: ...

    async def knows_client(self, clinic_id: str, client_id: str) -> bool:
        """Whether the client has a pet (listed or gone) at the clinic."""
        ...

    async def appointment(self, clinic_id: str, client_id: str, appointment_id: str) -> PetRecord | None:
        """The client's appointment at the clinic (cancelled ones too); None otherwise."""
        ...


class PetsRepositories(Protocol):
    @property
    def pets(self) -> PetStore: ...

    @property
    def clinics(self) -> ClinicStore: ...

    @property
    def records(self) -> PetRecordStore: ...

    @property
    def photos(self) -> PhotoStore: ...

    @property
    def requests(self) -> RequestStore: ...

    @property
    def refills(self) -> RefillStore: ...

    @property
    def forms(self) -> FormStore: ...

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete everything pets holds about the client: their pets (listed or gone), the photos of
        those pets, their records, their appointment requests, their refill requests and their forms'
        assignments and submissions; the clinic's rows (its forms included) stay. How many rows were
        deleted."""
        ...


PetsUnitOfWork = UnitOfWork[PetsRepositories]
