"""What sync's use cases need of storage: clinics, the PIMS data and the rejected records, in a unit
of work (with the outbox)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from petportal_runtime.uow import UnitOfWork

from ..domain.batch import BatchPlan, ClinicData, RecordKey
from ..domain.clinics import Clinic, ClinicRegistration
from ..domain.records import Rejection, StoredRejection


class SyncStore(Protocol):
    async def clinic_by_key_hash(self, api_key_hash: str) -> Clinic | None: ...

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
        records: Collection[RecordKey] = (),
    ) -> ClinicData:
        """The stored data these records refer to (only that)."""
        ...

    async def apply(self, clinic_id: str, plan: BatchPlan) -> None: ...

    async def add_rejections(
        self, clinic_id: str, rejections: Sequence[Rejection], raw_records: Sequence[Any]
    ) -> None: ...

    async def rejections(self, clinic_id: str, limit: int) -> list[StoredRejection]:
        """The clinic's rejected records, newest first (then by index)."""
        ...


class SyncRepositories(Protocol):
    @property
    def sync(self) -> SyncStore: ...


SyncUnitOfWork = UnitOfWork[SyncRepositories]
