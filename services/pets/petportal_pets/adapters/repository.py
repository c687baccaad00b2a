"""pets' tables in PostgreSQL, in the unit of work's transaction; rows leave as domain objects.

Every write is ordered by the event's `occurred_at`: an event older than what a row holds changes
nothing, so a redelivered or late event never brings back an old state.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, or_, tuple_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.auth import ClientRef
from petportal_runtime.db import table_of
from petportal_runtime.photos import Photo
from petportal_schemas import ClinicSettingsChanged

from ..domain import Clinic, Pet, PetRecord
from ..domain.forms import AssignmentStatus, FormAssignment, FormDefinition, FormField, FormSubmission
from ..domain.refills import RefillRequest, RefillStatus
from ..domain.requests import AppointmentRequest, RequestStatus
from .orm import (
    AppointmentRequestRow,
    ClinicRow,
    FormAssignmentRow,
    FormSubmissionRow,
    FormVersionRow,
    PetPhotoRow,
    PetRecordRow,
    PetRow,
    RefillRequestRow,
)

_FIELDS = (
    "client_id",
    "name",
    "species",
    "breed",
    "sex",
    "date_of_birth",
    "colour",
    "weight_kg",
    "microchip",
)


def _of_memberships(table: Any, memberships: Collection[ClientRef]) -> Any:
    return tuple_(table.c.clinic_id, table.c.client_id).in_([(m.clinic_id, m.client_id) for m in memberships])


def _newest(table: Any, where: Any, created: str, limit: int) -> Any:
    """A parent's or a clinic's requests (or forms), newest first (then by id: a stable order)."""
    return sa_select(table).where(where).order_by(table.c[created].desc(), table.c.id).limit(limit)


def _clinics(table: Any, clinic_id: str, status: Any) -> Any:
    """The clinic's rows, in one status if asked."""
    where = table.c.clinic_id == clinic_id
    return where if status is None else where & (table.c.status == status.value)


class PetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, pet: Pet) -> bool:
        """Insert or replace the pet's signalment unless a newer one is stored; True if written."""
        values: dict[str, Any] = {
            "clinic_id": pet.clinic_id,
            "patient_id": pet.patient_id,
            "updated_at": pet.updated_at,
            **{f: getattr(pet, f) for f in _FIELDS},
        }
        table = table_of(PetRow)
        insert_pet = insert(table).values(**values, gone_at=None)
        stmt = insert_pet.on_conflict_do_update(
            constraint="uq_pets_clinic_patient",
            set_={f: insert_pet.excluded[f] for f in (*_FIELDS, "updated_at", "gone_at")},
            # Only a newer (or equally new) record replaces the stored one.
            where=table.c.updated_at <= insert_pet.excluded.updated_at,
        ).returning(table.c.id)
        return (await self.session.execute(stmt)).first() is not None

    async def mark_gone(
        self, clinic_id: str, client_id: str, patient_id: str | None, at: datetime, deceased_on: date | None
    ) -> None:
        """The pet (every pet of the client when `patient_id` is None) leaves the lists: removed from the
        PIMS, or deceased. A later PatientUpserted (the PIMS brought it back) lists it again."""
        table = table_of(PetRow)
        where = [table.c.clinic_id == clinic_id, table.c.client_id == client_id, table.c.updated_at <= at]
        if patient_id is not None:
            where.append(table.c.patient_id == patient_id)
        await self.session.execute(
            update(table).where(*where).values(gone_at=at, updated_at=at, deceased_on=deceased_on)
        )

    async def for_clients(self, memberships: Collection[ClientRef]) -> list[Pet]:
        """The pets of these (clinic, client) memberships still with their families, by name."""
        table = table_of(PetRow)
        rows = await self.session.exec(
            select(PetRow)
            .where(_of_memberships(table, memberships), col(PetRow.gone_at).is_(None))
            .order_by(col(PetRow.name), col(PetRow.clinic_id), col(PetRow.patient_id))
        )
        return [_pet(row) for row in rows]

    async def find(self, memberships: Collection[ClientRef], patient_id: str) -> list[Pet]:
        """The pets with this PIMS id among the memberships' (one per clinic at most)."""
        table = table_of(PetRow)
        rows = await self.session.exec(
            select(PetRow).where(
                _of_memberships(table, memberships),
                col(PetRow.patient_id) == patient_id,
                col(PetRow.gone_at).is_(None),
            )
        )
        return [_pet(row) for row in rows]

    # Kept for the single-client callers (and the unit tests' fake has the same two).
    async def for_client(self, clinic_id: str, client_id: str) -> list[Pet]:
        return await self.for_clients([ClientRef(clinic_id=clinic_id, client_id=client_id)])

    async def get(self, clinic_id: str, client_id: str, patient_id: str) -> Pet | None:
        found = await self.find([ClientRef(clinic_id=clinic_id, client_id=client_id)], patient_id)
        return found[0] if found else None

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete the client's pets, listed or gone (the erasure's tombstone keeps older events out)."""
        table = table_of(PetRow)
        return _deleted(
            await self.session.execute(
                delete(table).where(table.c.clinic_id == clinic_id, table.c.client_id == client_id)
            )
        )


class ClinicRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def register(self, clinic_id: str, name: str, pims: str, timezone: str, at: datetime) -> None:
        table = table_of(ClinicRow)
        stmt = insert(table).values(
            clinic_id=clinic_id, name=name, pims=pims, timezone=timezone, registered_at=at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["clinic_id"],
                set_={k: stmt.excluded[k] for k in ("name", "pims", "timezone", "registered_at")},
                where=or_(table.c.registered_at.is_(None), table.c.registered_at <= at),
            )
        )

    async def set_settings(self, clinic_id: str, settings: ClinicSettingsChanged, at: datetime) -> None:
        table = table_of(ClinicRow)
        stmt = insert(table).values(
            clinic_id=clinic_id,
            pims="other",
            timezone="UTC",
            settings=settings.model_dump(mode="json"),
            settings_at=at,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["clinic_id"],
                set_={"settings": stmt.excluded.settings, "settings_at": stmt.excluded.settings_at},
                where=or_(table.c.settings_at.is_(None), table.c.settings_at <= at),
            )
        )

    async def get_many(self, clinic_ids: Collection[str]) -> dict[str, Clinic]:
        rows = await self.session.exec(
            select(ClinicRow).where(col(ClinicRow.clinic_id).in_(list(clinic_ids)))
        )
        clinics = {row.clinic_id: _clinic(row) for row in rows}
        return {clinic_id: clinics.get(clinic_id, Clinic(clinic_id)) for clinic_id in clinic_ids}


class PetRecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self, clinic_id: str, client_id: str, record: PetRecord, at: datetime, *, keep_payload: bool = False
    ) -> None:
        """Store the record's latest state; `keep_payload` (an ending: cancelled, done, deleted) only
        marks a known record inactive. An older event than the stored one changes nothing."""
        table = table_of(PetRecordRow)
        stmt = insert(table).values(
            clinic_id=clinic_id,
            kind=record.kind,
            record_id=record.record_id,
            client_id=client_id,
            patient_id=record.patient_id,
            payload=record.payload,
            active=record.active,
            updated_at=at,
        )
        changed = (
            ("active", "updated_at")
            if keep_payload
            else ("client_id", "patient_id", "payload", "active", "updated_at")
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["clinic_id", "kind", "record_id"],
                set_={k: stmt.excluded[k] for k in changed},
                where=table.c.updated_at <= at,
            )
        )

    async def for_pets(
        self, pets: Sequence[Pet], kinds: Collection[str], *, include_unassigned: bool = False
    ) -> dict[tuple[str, str], list[PetRecord]]:
        """The active records of these pets by (clinic_id, patient_id); with `include_unassigned`,
        the clients' records for no pet in particular too, under (clinic_id, "")."""
        if not pets:
            return {}
        table = table_of(PetRecordRow)
        clients = {(p.clinic_id, p.client_id) for p in pets}
        of_pets = tuple_(table.c.clinic_id, table.c.patient_id).in_(
            [(p.clinic_id, p.patient_id) for p in pets]
        )
        where = or_(of_pets, table.c.patient_id.is_(None)) if include_unassigned else of_pets
        rows = await self.session.exec(
            select(PetRecordRow).where(
                tuple_(table.c.clinic_id, table.c.client_id).in_(list(clients)),
                col(PetRecordRow.kind).in_(list(kinds)),
                col(PetRecordRow.active).is_(True),
                where,
            )
        )
        found: dict[tuple[str, str], list[PetRecord]] = {}
        for row in rows:
            found.setdefault((row.clinic_id, row.patient_id or ""), []).append(
                PetRecord(row.kind, row.record_id, row.patient_id, row.payload, row.active)  # type: ignore[arg-type]
            )
        return found

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete every record of the client, active or ended, for a pet or for none."""
        table = table_of(PetRecordRow)
        return _deleted(
            await self.session.execute(
                delete(table).where(table.c.clinic_id == clinic_id, table.c.client_id == client_id)
            )
        )


class PhotoRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put(self, clinic_id: str, patient_id: str, photo: Photo, at: datetime) -> None:
        table = table_of(PetPhotoRow)
        values = {
            "photo": photo.jpeg,
            "thumbnail": photo.thumbnail,
            "width": photo.width,
            "height": photo.height,
            "etag": photo.etag,
            "updated_at": at,
        }
        stmt = insert(table).values(clinic_id=clinic_id, patient_id=patient_id, **values)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["clinic_id", "patient_id"], set_=values)
        )

    async def get(self, clinic_id: str, patient_id: str, *, thumbnail: bool) -> tuple[bytes, str] | None:
        table = table_of(PetPhotoRow)
        column = table.c.thumbnail if thumbnail else table.c.photo
        row = (
            await self.session.execute(
                select(column, table.c.etag).where(
                    table.c.clinic_id == clinic_id, table.c.patient_id == patient_id
                )
            )
        ).first()
        return (bytes(row[0]), str(row[1])) if row else None

    async def delete(self, clinic_id: str, patient_id: str) -> bool:
        table = table_of(PetPhotoRow)
        result = await self.session.execute(
            table.delete().where(table.c.clinic_id == clinic_id, table.c.patient_id == patient_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def which(self, pets: Sequence[Pet]) -> set[tuple[str, str]]:
        """(clinic_id, patient_id) of these pets that have a photo."""
        if not pets:
            return set()
        table = table_of(PetPhotoRow)
        rows = await self.session.execute(
            select(table.c.clinic_id, table.c.patient_id).where(
                tuple_(table.c.clinic_id, table.c.patient_id).in_([(p.clinic_id, p.patient_id) for p in pets])
            )
        )
        return {(r[0], r[1]) for r in rows}

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete the photos of the client's pets (listed or gone); before the pets themselves."""
        table, pets = table_of(PetPhotoRow), table_of(PetRow)
        of_client = sa_select(pets.c.patient_id).where(
            pets.c.clinic_id == clinic_id, pets.c.client_id == client_id
        )
        return _deleted(
            await self.session.execute(
                delete(table).where(table.c.clinic_id == clinic_id, table.c.patient_id.in_(of_client))
            )
        )


class RequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, request: AppointmentRequest) -> None:
        await self.session.execute(insert(requests_table).values(**_request_values(request)))

    async def get(
        self, clinic_id: str, request_id: uuid.UUID, *, lock: bool = False
    ) -> AppointmentRequest | None:
        query = sa_select(requests_table).where(
            requests_table.c.clinic_id == clinic_id, requests_table.c.id == request_id
        )
        row = (await self.session.execute(query.with_for_update() if lock else query)).first()
        return _request(row) if row else None

    async def save(self, request: AppointmentRequest) -> None:
        values = _request_values(request)
        await self.session.execute(
            update(requests_table)
            .where(requests_table.c.id == request.id)
            .values(
                status=values["status"],
                answer_time=values["answer_time"],
                note=values["note"],
                answered_at=values["answered_at"],
                seen_at=values["seen_at"],
            )
        )

    async def for_clients(self, memberships: Collection[ClientRef], limit: int) -> list[AppointmentRequest]:
        if not memberships:
            return []
        query = _newest(requests_table, _of_memberships(requests_table, memberships), "created_at", limit)
        return [_request(r) for r in await self.session.execute(query)]

    async def for_clinic(
        self, clinic_id: str, status: RequestStatus | None, limit: int
    ) -> list[AppointmentRequest]:
        query = _newest(requests_table, _clinics(requests_table, clinic_id, status), "created_at", limit)
        return [_request(r) for r in await self.session.execute(query)]

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete the client's appointment requests, whatever their status."""
        t = requests_table.c
        return _deleted(
            await self.session.execute(
                delete(requests_table).where(t.clinic_id == clinic_id, t.client_id == client_id)
            )
        )


requests_table = table_of(AppointmentRequestRow)


def _request_values(r: AppointmentRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "clinic_id": r.clinic_id,
        "client_id": r.client_id,
        "patient_id": r.patient_id,
        "reason": r.reason,
        "preferred_times": [t.isoformat() for t in r.preferred_times],
        "status": r.status.value,
        "answer_time": r.answer_time,
        "note": r.note,
        "created_at": r.created_at,
        "answered_at": r.answered_at,
        "seen_at": r.seen_at,
    }


def _request(row: Any) -> AppointmentRequest:
    return AppointmentRequest(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        patient_id=row.patient_id,
        reason=row.reason,
        preferred_times=[datetime.fromisoformat(t) for t in row.preferred_times],
        id=row.id,
        status=RequestStatus(row.status),
        answer_time=row.answer_time,
        note=row.note,
        created_at=row.created_at,
        answered_at=row.answered_at,
        seen_at=row.seen_at,
    )


class RefillRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, request: RefillRequest) -> bool:
        """Store a new request; False (nothing stored) when one for the prescription is pending."""
        t = refills_table.c
        stmt = (
            insert(refills_table)
            .values(**_refill_values(request))
            .on_conflict_do_nothing(
                index_elements=[t.clinic_id, t.prescription_id],
                index_where=t.status == RefillStatus.PENDING.value,
            )
            .returning(t.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def get(self, clinic_id: str, request_id: uuid.UUID, *, lock: bool = False) -> RefillRequest | None:
        t = refills_table.c
        query = sa_select(refills_table).where(t.clinic_id == clinic_id, t.id == request_id)
        row = (await self.session.execute(query.with_for_update() if lock else query)).first()
        return _refill(row) if row else None

    async def save(self, request: RefillRequest) -> None:
        values = _refill_values(request)
        await self.session.execute(
            update(refills_table)
            .where(refills_table.c.id == request.id)
            .values({k: values[k] for k in ("status", "clinic_note", "decided_at", "seen_at")})
        )

    async def for_clients(self, memberships: Collection[ClientRef], limit: int) -> list[RefillRequest]:
        if not memberships:
            return []
        query = _newest(refills_table, _of_memberships(refills_table, memberships), "created_at", limit)
        return [_refill(r) for r in await self.session.execute(query)]

    async def for_clinic(
        self, clinic_id: str, status: RefillStatus | None, limit: int
    ) -> list[RefillRequest]:
        query = _newest(refills_table, _clinics(refills_table, clinic_id, status), "created_at", limit)
        return [_refill(r) for r in await self.session.execute(query)]

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete the client's refill requests, whatever their status."""
        t = refills_table.c
        return _deleted(
            await self.session.execute(
                delete(refills_table).where(t.clinic_id == clinic_id, t.client_id == client_id)
            )
        )


refills_table = table_of(RefillRequestRow)


def _refill_values(r: RefillRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "clinic_id": r.clinic_id,
        "client_id": r.client_id,
        "patient_id": r.patient_id,
        "prescription_id": r.prescription_id,
        "medication": r.medication,
        "note": r.note,
        "status": r.status.value,
        "clinic_note": r.clinic_note,
        "created_at": r.created_at,
        "decided_at": r.decided_at,
        "seen_at": r.seen_at,
    }


def _refill(row: Any) -> RefillRequest:
    return RefillRequest(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        patient_id=row.patient_id,
        prescription_id=row.prescription_id,
        medication=row.medication,
        note=row.note,
        id=row.id,
        status=RefillStatus(row.status),
        clinic_note=row.clinic_note,
        created_at=row.created_at,
        decided_at=row.decided_at,
        seen_at=row.seen_at,
    )


class FormRepository:
    """The clinic's forms (every version), their assignments and submissions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_version(self, definition: FormDefinition) -> bool:
        """Store a version; False (nothing stored) when this form already has it."""
        t = form_versions_table.c
        stmt = (
            insert(form_versions_table)
            .values(
                form_id=definition.form_id,
                version=definition.version,
                clinic_id=definition.clinic_id,
                title=definition.title,
                description=definition.description,
                fields=[f.as_json() for f in definition.fields],
                schema=definition.schema,
                published_at=definition.published_at,
            )
            .on_conflict_do_nothing(index_elements=[t.form_id, t.version])
            .returning(t.form_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def definition(
        self, clinic_id: str, form_id: uuid.UUID, version: int | None = None
    ) -> FormDefinition | None:
        """One version of the clinic's form (the latest when `version` is None)."""
        t = form_versions_table.c
        query = sa_select(form_versions_table).where(t.clinic_id == clinic_id, t.form_id == form_id)
        query = query.where(t.version == version) if version is not None else query
        row = (await self.session.execute(query.order_by(t.version.desc()).limit(1))).first()
        return _definition(row) if row else None

    async def definitions(self, clinic_id: str, limit: int) -> list[FormDefinition]:
        """The latest version of each of the clinic's forms, by title."""
        t = form_versions_table.c
        latest = (
            sa_select(form_versions_table)
            .where(t.clinic_id == clinic_id)
            .ext(distinct_on(t.form_id))
            .order_by(t.form_id, t.version.desc())
            .subquery()
        )
        query = sa_select(latest).order_by(latest.c.title, latest.c.form_id).limit(limit)
        return [_definition(r) for r in await self.session.execute(query)]

    async def add_assignment(self, assignment: FormAssignment) -> None:
        await self.session.execute(insert(form_assignments_table).values(**_assignment_values(assignment)))

    async def assignment(
        self, clinic_id: str, assignment_id: uuid.UUID, *, lock: bool = False
    ) -> FormAssignment | None:
        t = form_assignments_table.c
        query = sa_select(form_assignments_table).where(t.clinic_id == clinic_id, t.id == assignment_id)
        row = (await self.session.execute(query.with_for_update() if lock else query)).first()
        return _assignment(row) if row else None

    async def save_assignment(self, assignment: FormAssignment) -> None:
        values = _assignment_values(assignment)
        await self.session.execute(
            update(form_assignments_table)
            .where(form_assignments_table.c.id == assignment.id)
            .values({k: values[k] for k in ("status", "submission_id", "completed_at")})
        )

    async def assignments_for_clients(
        self, memberships: Collection[ClientRef], limit: int
    ) -> list[FormAssignment]:
        if not memberships:
            return []
        mine = _of_memberships(form_assignments_table, memberships)
        query = _newest(form_assignments_table, mine, "assigned_at", limit)
        return [_assignment(r) for r in await self.session.execute(query)]

    async def assignments_for_clinic(
        self, clinic_id: str, status: AssignmentStatus | None, limit: int
    ) -> list[FormAssignment]:
        theirs = _clinics(form_assignments_table, clinic_id, status)
        query = _newest(form_assignments_table, theirs, "assigned_at", limit)
        return [_assignment(r) for r in await self.session.execute(query)]

    async def add_submission(self, submission: FormSubmission) -> bool:
        """Store a submission; False (nothing stored) when the assignment already has one."""
        t = form_submissions_table.c
        stmt = (
            insert(form_submissions_table)
            .values(
                id=submission.id,
                assignment_id=submission.assignment_id,
                clinic_id=submission.clinic_id,
                client_id=submission.client_id,
                form_id=submission.form_id,
                version=submission.version,
                patient_id=submission.patient_id,
                appointment_id=submission.appointment_id,
                answers=submission.answers,
                submitted_at=submission.submitted_at,
            )
            .on_conflict_do_nothing(index_elements=[t.assignment_id])
            .returning(t.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def submission(self, clinic_id: str, submission_id: uuid.UUID) -> FormSubmission | None:
        t = form_submissions_table.c
        query = sa_select(form_submissions_table).where(t.clinic_id == clinic_id, t.id == submission_id)
        row = (await self.session.execute(query)).first()
        return _submission(row) if row else None

    async def knows_client(self, clinic_id: str, client_id: str) -> bool:
        """Whether pets has heard of the client at the clinic: a pet of theirs (listed or gone)."""
        t = table_of(PetRow).c
        query = sa_select(t.id).where(t.clinic_id == clinic_id, t.client_id == client_id).limit(1)
        return (await self.session.execute(query)).first() is not None

    async def appointment(self, clinic_id: str, client_id: str, appointment_id: str) -> PetRecord | None:
        """The client's appointment at the clinic as the PIMS last published it (cancelled ones too)."""
        t = table_of(PetRecordRow).c
        query = sa_select(table_of(PetRecordRow)).where(
            t.clinic_id == clinic_id,
            t.kind == "appointment",
            t.record_id == appointment_id,
            t.client_id == client_id,
        )
        row = (await self.session.execute(query)).first()
        return (
            PetRecord("appointment", row.record_id, row.patient_id, row.payload, row.active) if row else None
        )

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete the client's submissions and assignments; the clinic's forms stay."""
        deleted = 0
        for table in (form_submissions_table, form_assignments_table):
            deleted += _deleted(
                await self.session.execute(
                    delete(table).where(table.c.clinic_id == clinic_id, table.c.client_id == client_id)
                )
            )
        return deleted


form_versions_table = table_of(FormVersionRow)
form_assignments_table = table_of(FormAssignmentRow)
form_submissions_table = table_of(FormSubmissionRow)


def _definition(row: Any) -> FormDefinition:
    return FormDefinition(
        clinic_id=row.clinic_id,
        title=row.title,
        description=row.description,
        fields=tuple(FormField.from_json(f) for f in row.fields),
        form_id=row.form_id,
        version=row.version,
        published_at=row.published_at,
        schema=row.schema,
    )


def _assignment_values(a: FormAssignment) -> dict[str, Any]:
    return {
        "id": a.id,
        "clinic_id": a.clinic_id,
        "client_id": a.client_id,
        "form_id": a.form_id,
        "version": a.version,
        "title": a.title,
        "patient_id": a.patient_id,
        "appointment_id": a.appointment_id,
        "status": a.status.value,
        "assigned_at": a.assigned_at,
        "submission_id": a.submission_id,
        "completed_at": a.completed_at,
    }


def _assignment(row: Any) -> FormAssignment:
    return FormAssignment(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        form_id=row.form_id,
        version=row.version,
        title=row.title,
        patient_id=row.patient_id,
        appointment_id=row.appointment_id,
        id=row.id,
        status=AssignmentStatus(row.status),
        assigned_at=row.assigned_at,
        submission_id=row.submission_id,
        completed_at=row.completed_at,
    )


def _submission(row: Any) -> FormSubmission:
    return FormSubmission(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        assignment_id=row.assignment_id,
        form_id=row.form_id,
        version=row.version,
        answers=row.answers,
        submitted_at=row.submitted_at,
        patient_id=row.patient_id,
        appointment_id=row.appointment_id,
        id=row.id,
    )


@dataclass(frozen=True)
class SqlRepositories:
    pets: PetRepository
    clinics: ClinicRepository
    records: PetRecordRepository
    photos: PhotoRepository
    requests: RequestRepository
    refills: RefillRepository
    forms: FormRepository

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete everything pets holds about the client (docs/erasure.md): the photos of their pets
        (found through the pets, so first), their pets' records, their appointment and refill requests,
        their forms' assignments and submissions, and their pets. The clinic's own rows (its forms
        included) stay. How many rows were deleted."""
        return (
            await self.photos.erase_client(clinic_id, client_id)
            + await self.records.erase_client(clinic_id, client_id)
            + await self.requests.erase_client(clinic_id, client_id)
            + await self.refills.erase_client(clinic_id, client_id)
            + await self.forms.erase_client(clinic_id, client_id)
            + await self.pets.erase_client(clinic_id, client_id)
        )


def sql_repositories(session: AsyncSession) -> SqlRepositories:
    return SqlRepositories(
        pets=PetRepository(session),
        clinics=ClinicRepository(session),
        records=PetRecordRepository(session),
        photos=PhotoRepository(session),
        requests=RequestRepository(session),
        refills=RefillRepository(session),
        forms=FormRepository(session),
    )


def _deleted(result: Any) -> int:
    """How many rows a DELETE removed."""
    return int(result.rowcount)


def _pet(row: PetRow) -> Pet:
    return Pet(
        clinic_id=row.clinic_id,
        patient_id=row.patient_id,
        updated_at=row.updated_at,
        **{f: getattr(row, f) for f in _FIELDS},
    )


def _clinic(row: ClinicRow) -> Clinic:
    settings = ClinicSettingsChanged.model_validate(row.settings) if row.settings else ClinicSettingsChanged()
    return Clinic(row.clinic_id, row.name, row.pims, row.timezone, settings)
