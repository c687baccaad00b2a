"""sync's tables in PostgreSQL, in the unit of work's transaction; rows leave as domain objects."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import TextClause, delete, func, or_, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..domain.apikeys import ApiKeyInfo, key_id
from ..domain.batch import BatchPlan, ClinicData, RecordKey, StoredRecord
from ..domain.clinics import Clinic, ClinicRegistration
from ..domain.erasure import client_traces
from ..domain.records import Rejection, StoredRejection, record_text
from ..domain.snapshots import Snapshot
from .booking import BookingRepository, OutboundRepository
from .orm import (
    ApiKeyRow,
    ClinicalRecordRow,
    ClinicRow,
    ContactRow,
    EnrolmentRow,
    PatientRow,
    RejectedRecordRow,
    SnapshotRow,
    SnapshotSeenRow,
)


def _upsert_sql(table: str, keys: tuple[str, ...], columns: dict[str, str]) -> TextClause:
    """INSERT of the rows of a JSON array (`_rows`; `clinic_id` and `updated_at` the same for all),
    updating the row of the same key; `columns` maps each column to its SQL type. One JSON text for
    all the rows rather than an array a column: the driver checks each element of an array."""
    names = ", ".join(columns)
    updated = [name for name in (*columns, "updated_at") if name not in keys]
    return text(
        f"INSERT INTO {table} (clinic_id, {names}, updated_at)"
        f" SELECT CAST(:clinic_id AS text), {names}, CAST(:updated_at AS timestamptz)"
        " FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
        f" AS rows ({', '.join(f'{name} {sql_type}' for name, sql_type in columns.items())})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET"
        f" {', '.join(f'{name} = EXCLUDED.{name}' for name in updated)}"
    )


def _rows(clinic_id: str, now: datetime, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of an `_upsert_sql` statement (dates as ISO text)."""
    return {"clinic_id": clinic_id, "updated_at": now, "rows": json.dumps(rows, default=date.isoformat)}


_CONTACT_COLUMNS = {
    "client_id": "text",
    "first_name": "text",
    "last_name": "text",
    "email": "text",
    "phone": "text",
    "version": "bigint",
}
_PATIENT_COLUMNS = {
    "patient_id": "text",
    "client_id": "text",
    "name": "text",
    "species": "text",
    "breed": "text",
    "sex": "text",
    "date_of_birth": "date",
    "colour": "text",
    "weight_kg": "float8",
    "microchip": "text",
    "deceased": "boolean",
    "deceased_on": "date",
    "version": "bigint",
}
_PROGRAM_COLUMNS = {"code": "text", "name": "text", "call_to_action": "text", "offered": "boolean"}
_UPSERT_CONTACTS = _upsert_sql("contacts", ("clinic_id", "client_id"), _CONTACT_COLUMNS)
_UPSERT_PATIENTS = _upsert_sql("patients", ("clinic_id", "patient_id"), _PATIENT_COLUMNS)
_UPSERT_PROGRAMS = _upsert_sql("programs", ("clinic_id", "code"), _PROGRAM_COLUMNS)
_UPSERT_RECORDS = _upsert_sql(
    "clinical_records",
    ("clinic_id", "kind", "record_id"),
    {"kind": "text", "record_id": "text", "client_id": "text", "state": "jsonb", "version": "bigint"},
)
# With the clinic's timezone, for the rest of the transaction: each statement planned for its own
# parameters (`_by_primary_key`).
_CLINIC_TIMEZONE = text(
    "SELECT (SELECT timezone FROM clinics WHERE clinic_id = :clinic_id),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)
_RECORDS_OF_CLIENTS = text(
    "SELECT kind, record_id, client_id, state, version FROM clinical_records"
    " WHERE clinic_id = :clinic_id AND client_id = ANY(CAST(:client_ids AS text[]))"
)
# The same, with the records of no client (the clinic's settings).
_RECORDS_OF_CLIENTS_OR_CLINIC = text(
    "SELECT kind, record_id, client_id, state, version FROM clinical_records"
    " WHERE clinic_id = :clinic_id AND (client_id = ANY(CAST(:client_ids AS text[])) OR client_id IS NULL)"
)


def _by_primary_key(table: str, id_column: str, columns: Sequence[str]) -> TextClause:
    """The clinic's rows with these ids, one primary-key probe per id (a subquery with a LIMIT is
    never merged into a join). `id = ANY(:ids)` was planned as a scan of all the clinic's rows
    while the table had no statistics (a clinic's first import), and a prepared statement's
    generic plan, made while the table was small, stays so as it grows: `load` has each statement
    planned for its parameters, so the probe is planned knowing the table's size."""
    return text(
        f"SELECT {', '.join(f'found.{c}' for c in columns)}"
        " FROM unnest(CAST(:ids AS text[])) AS wanted (id)"
        f" CROSS JOIN LATERAL (SELECT {', '.join(columns)} FROM {table}"
        f" WHERE clinic_id = :clinic_id AND {id_column} = wanted.id LIMIT 1) AS found"
    )


_CONTACTS = _by_primary_key(
    "contacts", "client_id", ["client_id", "first_name", "last_name", "email", "phone", "version"]
)
_PATIENTS = _by_primary_key("patients", "patient_id", list(_PATIENT_COLUMNS))
_PROGRAMS = text(
    "SELECT code, name, call_to_action, offered FROM programs"
    " WHERE clinic_id = :clinic_id AND code = ANY(CAST(:codes AS text[]))"
)
_ENROLMENTS = text(
    "SELECT client_id, program_code FROM enrolments"
    " WHERE clinic_id = :clinic_id AND (client_id, program_code) IN"
    " (SELECT * FROM unnest(CAST(:client_ids AS text[]), CAST(:codes AS text[])))"
)


class SyncRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- clinics --------------------------------------------------------------------------------

    async def clinic(self, clinic_id: str) -> Clinic | None:
        row = (
            await self.session.exec(select(ClinicRow).where(col(ClinicRow.clinic_id) == clinic_id))
        ).first()
        return Clinic(row.clinic_id, row.name, row.pims) if row else None

    async def clinic_by_key_hash(self, api_key_hash: str) -> Clinic | None:
        """The clinic of a key that is neither expired nor revoked."""
        now = datetime.now(UTC)
        row = (
            await self.session.exec(
                select(ClinicRow)
                .join(ApiKeyRow, col(ApiKeyRow.clinic_id) == col(ClinicRow.clinic_id))
                .where(
                    col(ApiKeyRow.key_hash) == api_key_hash,
                    col(ApiKeyRow.revoked_at).is_(None),
                    or_(col(ApiKeyRow.expires_at).is_(None), col(ApiKeyRow.expires_at) > now),
                )
            )
        ).first()
        return Clinic(row.clinic_id, row.name, row.pims) if row else None

    async def add_api_key(
        self, clinic_id: str, api_key_hash: str, *, overlap: timedelta | None = None
    ) -> None:
        """A new key; with `overlap`, the clinic's other valid keys expire that much later."""
        now = datetime.now(UTC)
        if overlap is not None:
            await self.session.exec(
                update(ApiKeyRow)
                .where(
                    col(ApiKeyRow.clinic_id) == clinic_id,
                    col(ApiKeyRow.revoked_at).is_(None),
                    or_(col(ApiKeyRow.expires_at).is_(None), col(ApiKeyRow.expires_at) > now + overlap),
                )
                .values(expires_at=now + overlap)
            )
        self.session.add(
            ApiKeyRow(key_hash=api_key_hash, key_id=key_id(api_key_hash), clinic_id=clinic_id, created_at=now)
        )
        await self.session.flush()

    async def revoke_api_key(self, clinic_id: str, api_key_id: str) -> bool:
        result = await self.session.exec(
            update(ApiKeyRow)
            .where(col(ApiKeyRow.clinic_id) == clinic_id, col(ApiKeyRow.key_id) == api_key_id)
            .values(revoked_at=func.coalesce(ApiKeyRow.revoked_at, datetime.now(UTC)))
        )
        return bool(result.rowcount)

    async def api_keys(self, clinic_id: str) -> list[ApiKeyInfo]:
        rows = await self.session.exec(
            select(ApiKeyRow).where(col(ApiKeyRow.clinic_id) == clinic_id).order_by(col(ApiKeyRow.created_at))
        )
        return [ApiKeyInfo(r.key_id, r.created_at, r.expires_at, r.revoked_at) for r in rows]

    async def add_clinic(self, clinic: ClinicRegistration) -> bool:
        """False when the clinic id is taken."""
        row = ClinicRow(
            clinic_id=clinic.clinic_id,
            name=clinic.name,
            pims=clinic.pims,
            sms_number=clinic.sms_number,
            timezone=clinic.timezone,
        )
        stmt = (
            insert(ClinicRow)
            .values(**row.model_dump())
            .on_conflict_do_nothing(index_elements=["clinic_id"])
            .returning(col(ClinicRow.clinic_id))
        )
        if (await self.session.exec(stmt)).first() is None:
            return False
        await self.add_api_key(clinic.clinic_id, clinic.api_key_hash)
        return True

    async def lock_clinic(self, clinic_id: str) -> None:
        """Batches of one clinic apply one after another, so change detection sees committed data."""
        key = func.hashtextextended(f"sync:{clinic_id}", 0)
        await self.session.exec(select(func.pg_advisory_xact_lock(key)))

    # --- batch state ----------------------------------------------------------------------------

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
        # Plain rows (no ORM objects), each lookup one statement whose ids are an array parameter:
        # the same SQL for any batch, so the driver's prepared statement is reused.
        data = ClinicData()
        conn = await self.session.connection()
        timezone = (await conn.execute(_CLINIC_TIMEZONE, {"clinic_id": clinic_id})).scalar()
        data.timezone = timezone or "UTC"
        if records:
            # By the clients the records name (an index range each), kinds and ids checked here: a
            # lookup by (kind, record_id) pairs may be planned as a scan of all the clinic's records.
            wanted = {key for key, _client in records}
            clients = sorted({client for _key, client in records if client is not None})
            rows = await conn.execute(
                _RECORDS_OF_CLIENTS_OR_CLINIC if len(clients) < len(records) else _RECORDS_OF_CLIENTS,
                {"clinic_id": clinic_id, "client_ids": clients},
            )
            for kind, record_id, client_id, state, version in rows:
                if (kind, record_id) in wanted:
                    data.records[(kind, record_id)] = StoredRecord(client_id, state, version)
        if client_ids:
            contacts = await conn.execute(_CONTACTS, {"clinic_id": clinic_id, "ids": sorted(client_ids)})
            for client_id, first_name, last_name, email, phone, version in contacts:
                data.contacts[client_id] = {
                    "first_name": first_name,
                    "last_name": last_name,
                    "email": email,
                    "phone": phone,
                }
                if version is not None:
                    data.versions[("contact", client_id)] = version
        if patient_ids:
            patients = await conn.execute(_PATIENTS, {"clinic_id": clinic_id, "ids": sorted(patient_ids)})
            for row in patients.mappings():
                state = dict(row)
                patient_id, version = state.pop("patient_id"), state.pop("version")
                data.patients[patient_id] = state
                if version is not None:
                    data.versions[("patient", patient_id)] = version
        if program_codes:
            programs = await conn.execute(_PROGRAMS, {"clinic_id": clinic_id, "codes": sorted(program_codes)})
            for code, name, call_to_action, offered in programs:
                data.programs[code] = {"name": name, "call_to_action": call_to_action, "offered": offered}
        if enrolments:
            pairs = sorted(enrolments)
            result = await conn.execute(
                _ENROLMENTS,
                {
                    "clinic_id": clinic_id,
                    "client_ids": [client for client, _code in pairs],
                    "codes": [code for _client, code in pairs],
                },
            )
            data.enrolments = {(r[0], r[1]) for r in result}
        return data

    async def apply(self, clinic_id: str, plan: BatchPlan) -> None:
        # Each table's rows in one statement (`_upsert_sql`).
        now = datetime.now(UTC)
        conn = await self.session.connection()
        if plan.contacts:
            contacts = [
                {**state, "client_id": client, "version": plan.versions.get(("contact", client))}
                for client, state in plan.contacts.items()
            ]
            await conn.execute(_UPSERT_CONTACTS, _rows(clinic_id, now, contacts))
        if plan.programs:
            programs = [{**state, "code": code} for code, state in plan.programs.items()]
            await conn.execute(_UPSERT_PROGRAMS, _rows(clinic_id, now, programs))
        if plan.patients:
            patients = [
                {**state, "patient_id": patient, "version": plan.versions.get(("patient", patient))}
                for patient, state in plan.patients.items()
            ]
            await conn.execute(_UPSERT_PATIENTS, _rows(clinic_id, now, patients))
        if plan.records:
            records = [
                {
                    "kind": kind,
                    "record_id": record_id,
                    "client_id": record.client_id,
                    "state": record.state,
                    "version": record.version,
                }
                for (kind, record_id), record in plan.records.items()
            ]
            await conn.execute(_UPSERT_RECORDS, _rows(clinic_id, now, records))
        await BookingRepository(self.session).upsert_slots(clinic_id, plan.slots, now)
        if plan.removed_patients:
            await self.session.exec(
                delete(PatientRow).where(
                    col(PatientRow.clinic_id) == clinic_id,
                    col(PatientRow.patient_id).in_(plan.removed_patients),
                )
            )
        if plan.removed_contacts:
            # The client's pets and records go with it, so that a contact the PIMS brings back is
            # published again in full.
            for table in (PatientRow, ClinicalRecordRow, EnrolmentRow, ContactRow):
                await self.session.exec(
                    delete(table).where(
                        col(table.clinic_id) == clinic_id, col(table.client_id).in_(plan.removed_contacts)
                    )
                )
        if plan.enrolments:
            await self.session.exec(
                insert(EnrolmentRow).on_conflict_do_nothing(),
                params=[
                    {"clinic_id": clinic_id, "client_id": client, "program_code": code, "enrolled_at": now}
                    for client, code in plan.enrolments
                ],
            )

    # --- rejections -----------------------------------------------------------------------------

    async def add_rejections(
        self,
        clinic_id: str,
        rejections: Sequence[Rejection],
        raw_records: Sequence[Any],
        source: str = "canonical",
    ) -> None:
        if not rejections:
            return
        now = datetime.now(UTC)
        await self.session.exec(
            insert(RejectedRecordRow),
            params=[
                RejectedRecordRow(
                    clinic_id=clinic_id,
                    received_at=now,
                    index=r.index,
                    kind=r.kind,
                    raw=record_text(raw_records[r.index]),
                    errors=[{"field": e.field, "message": e.message} for e in r.errors],
                    source=source,
                ).model_dump()
                for r in rejections
            ],
        )

    async def rejections_by_id(
        self, clinic_id: str, ids: Collection[uuid.UUID] | None
    ) -> list[StoredRejection]:
        """The clinic's rejections with these ids (all of them for None), oldest first."""
        query = select(RejectedRecordRow).where(col(RejectedRecordRow.clinic_id) == clinic_id)
        if ids is not None:
            query = query.where(col(RejectedRecordRow.id).in_(list(ids)))
        rows = await self.session.exec(
            query.order_by(col(RejectedRecordRow.received_at), col(RejectedRecordRow.index))
        )
        return [_rejection(row) for row in rows]

    async def delete_rejections(
        self, clinic_id: str, ids: Collection[uuid.UUID] | None = None, before: datetime | None = None
    ) -> int:
        """Delete the clinic's rejections: these ids, or those received before a time, or all."""
        stmt = delete(RejectedRecordRow).where(col(RejectedRecordRow.clinic_id) == clinic_id)
        if ids is not None:
            stmt = stmt.where(col(RejectedRecordRow.id).in_(list(ids)))
        if before is not None:
            stmt = stmt.where(col(RejectedRecordRow.received_at) < before)
        result = await self.session.exec(stmt)
        return int(result.rowcount or 0)

    async def rejections(self, clinic_id: str, limit: int) -> list[StoredRejection]:
        result = await self.session.exec(
            select(RejectedRecordRow)
            .where(col(RejectedRecordRow.clinic_id) == clinic_id)
            .order_by(col(RejectedRecordRow.received_at).desc(), col(RejectedRecordRow.index))
            .limit(limit)
        )
        return [_rejection(row) for row in result]

    # --- erasure --------------------------------------------------------------------------------

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete sync's copy of the client: the rows keyed to them, the snapshots' mentions of them
        and of their patients, and the clinic's rejected records that hold their id, email or phone
        (read from the contact first). Their versions go with the rows, so records the PIMS sends
        again are a new client's, published in full. How many rows were deleted."""
        contact = (
            await self.session.exec(
                select(ContactRow).where(
                    col(ContactRow.clinic_id) == clinic_id, col(ContactRow.client_id) == client_id
                )
            )
        ).first()
        traces = (
            client_traces(client_id, contact.email, contact.phone) if contact else client_traces(client_id)
        )
        patients = list(
            await self.session.exec(
                select(PatientRow.patient_id).where(
                    col(PatientRow.clinic_id) == clinic_id, col(PatientRow.client_id) == client_id
                )
            )
        )
        of_clinic = select(SnapshotRow.id).where(col(SnapshotRow.clinic_id) == clinic_id)
        seen = [("contact", client_id)] + [("patient", patient) for patient in patients]
        deleted = await self._deleted(
            delete(SnapshotSeenRow).where(
                col(SnapshotSeenRow.snapshot_id).in_(of_clinic),
                tuple_(col(SnapshotSeenRow.kind), col(SnapshotSeenRow.pims_id)).in_(seen),
            )
        )
        for table in (ClinicalRecordRow, EnrolmentRow, PatientRow, ContactRow):
            deleted += await self._deleted(
                delete(table).where(col(table.clinic_id) == clinic_id, col(table.client_id) == client_id)
            )
        raw = col(RejectedRecordRow.raw)
        holds = [func.strpos(raw, traces.client_id) > 0]
        if traces.email is not None:
            holds.append(func.strpos(func.lower(raw), traces.email) > 0)
        if traces.phone_digits is not None:
            holds.append(func.strpos(func.regexp_replace(raw, "[^0-9]", "", "g"), traces.phone_digits) > 0)
        deleted += await self._deleted(
            delete(RejectedRecordRow).where(col(RejectedRecordRow.clinic_id) == clinic_id, or_(*holds))
        )
        return deleted

    async def _deleted(self, statement: Any) -> int:
        return int((await self.session.exec(statement)).rowcount or 0)


class SnapshotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(self, clinic_id: str) -> Snapshot:
        row = SnapshotRow(clinic_id=clinic_id)
        self.session.add(row)
        await self.session.flush()
        return _snapshot(row)

    async def get(self, clinic_id: str, snapshot_id: uuid.UUID, *, lock: bool = False) -> Snapshot | None:
        query = select(SnapshotRow).where(
            col(SnapshotRow.id) == snapshot_id, col(SnapshotRow.clinic_id) == clinic_id
        )
        row = (await self.session.exec(query.with_for_update() if lock else query)).first()
        return _snapshot(row) if row else None

    async def add_page(
        self, snapshot_id: uuid.UUID, contacts: Collection[str], patients: Collection[str]
    ) -> None:
        await self.session.exec(
            update(SnapshotRow).where(col(SnapshotRow.id) == snapshot_id).values(pages=SnapshotRow.pages + 1)
        )
        seen = [("contact", c) for c in contacts] + [("patient", p) for p in patients]
        if seen:
            await self.session.exec(
                insert(SnapshotSeenRow).on_conflict_do_nothing(),
                params=[{"snapshot_id": snapshot_id, "kind": k, "pims_id": i} for k, i in seen],
            )

    async def complete(self, snapshot_id: uuid.UUID, at: datetime) -> None:
        await self.session.exec(
            update(SnapshotRow).where(col(SnapshotRow.id) == snapshot_id).values(completed_at=at)
        )

    async def to_reconcile(self, clinic_id: str | None) -> list[tuple[Snapshot, str]]:
        """The newest complete, unreconciled snapshot of each clinic (or of one), with its timezone."""
        query = (
            select(SnapshotRow, ClinicRow.timezone)
            .join(ClinicRow, col(ClinicRow.clinic_id) == col(SnapshotRow.clinic_id))
            .where(col(SnapshotRow.completed_at).is_not(None), col(SnapshotRow.reconciled_at).is_(None))
            .order_by(col(SnapshotRow.clinic_id), col(SnapshotRow.completed_at).desc())
        )
        if clinic_id is not None:
            query = query.where(col(SnapshotRow.clinic_id) == clinic_id)
        newest: dict[str, tuple[Snapshot, str]] = {}
        for row, timezone in await self.session.exec(query):
            newest.setdefault(row.clinic_id, (_snapshot(row), timezone))
        return list(newest.values())

    async def missing(
        self, clinic_id: str, snapshot_id: uuid.UUID
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Contacts, and (client, patient) pairs, that the clinic's data holds and the snapshot did not."""
        seen = select(SnapshotSeenRow.pims_id).where(col(SnapshotSeenRow.snapshot_id) == snapshot_id)
        contacts = await self.session.exec(
            select(ContactRow.client_id).where(
                col(ContactRow.clinic_id) == clinic_id,
                col(ContactRow.client_id).not_in(seen.where(col(SnapshotSeenRow.kind) == "contact")),
            )
        )
        patients = await self.session.exec(
            select(PatientRow.client_id, PatientRow.patient_id).where(
                col(PatientRow.clinic_id) == clinic_id,
                col(PatientRow.patient_id).not_in(seen.where(col(SnapshotSeenRow.kind) == "patient")),
            )
        )
        return sorted(contacts), sorted((c, p) for c, p in patients)

    async def finish(self, clinic_id: str, snapshot_id: uuid.UUID, at: datetime) -> None:
        """Mark it reconciled and drop the clinic's older snapshots (and abandoned ones past expiry)."""
        await self.session.exec(
            update(SnapshotRow).where(col(SnapshotRow.id) == snapshot_id).values(reconciled_at=at)
        )
        await self.session.exec(
            delete(SnapshotRow).where(
                col(SnapshotRow.clinic_id) == clinic_id,
                col(SnapshotRow.id) != snapshot_id,
                col(SnapshotRow.started_at) < at,
            )
        )

    async def expire(self, before: datetime) -> int:
        result = await self.session.exec(
            delete(SnapshotRow).where(
                col(SnapshotRow.started_at) < before, col(SnapshotRow.completed_at).is_(None)
            )
        )
        return int(result.rowcount or 0)


def _snapshot(row: SnapshotRow) -> Snapshot:
    return Snapshot(row.id, row.clinic_id, row.started_at, row.pages, row.completed_at, row.reconciled_at)


def _rejection(row: RejectedRecordRow) -> StoredRejection:
    return StoredRejection(
        id=row.id,
        received_at=row.received_at,
        index=row.index,
        kind=row.kind,
        raw=row.raw,
        errors=row.errors,
        source=row.source,
    )


@dataclass(frozen=True)
class SqlRepositories:
    sync: SyncRepository
    snapshots: SnapshotRepository
    bookings: BookingRepository
    outbound: OutboundRepository


def sql_repositories(session: AsyncSession) -> SqlRepositories:
    return SqlRepositories(
        sync=SyncRepository(session),
        snapshots=SnapshotRepository(session),
        bookings=BookingRepository(session),
        outbound=OutboundRepository(session),
    )
