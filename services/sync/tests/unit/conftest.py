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
from petportal_sync.domain.clinics import Clinic, ClinicRegistration
from petportal_sync.domain.erasure import client_traces
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
class InMemoryRepositories:
    sync: InMemorySync = field(default_factory=InMemorySync)


@pytest.fixture
def repositories() -> InMemoryRepositories:
    return InMemoryRepositories()


@pytest.fixture
def uow(repositories: InMemoryRepositories) -> FakeUnitOfWork[InMemoryRepositories]:
    return FakeUnitOfWork(repositories)
