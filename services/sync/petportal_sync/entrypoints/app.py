"""sync's HTTP API for PIMS connectors, authenticated by the clinic's API key."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from petportal_runtime.edge import validated_per_item
from petportal_runtime.errors import ErrorAnswer, ErrorStatuses
from petportal_runtime.text import value_problems
from petportal_schemas.pims import PimsName

from ..bootstrap import Sync, bootstrap
from ..domain.apikeys import ApiKeyNotFound, hash_api_key, key_id
from ..domain.clinics import InvalidApiKey
from ..domain.snapshots import Snapshot, SnapshotClosed, SnapshotIncomplete, SnapshotNotFound
from ..service_layer import services
from ..settings import MAX_RECORDS
from . import booking_api
from .dependencies import CurrentClinic, SyncDep, UnitOfWork


class RecordBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pims: PimsName
    # Each record is validated on its own (see domain.records); here only the batch's shape.
    records: list[dict[str, Any]] = Field(max_length=MAX_RECORDS)


class NativeRecordBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Records in the PIMS's own shapes (docs/pims/<pims>.md); each is mapped and validated on its own.
    records: list[dict[str, Any]] = Field(max_length=MAX_RECORDS)


NativePims = Literal["cornerstone", "avimark", "impromed", "ezyvet", "pulse"]


class FieldErrorPublic(BaseModel):
    field: str
    message: str


class RejectionPublic(BaseModel):
    index: int
    kind: str | None
    errors: list[FieldErrorPublic]


class BatchResultPublic(BaseModel):
    accepted: int
    rejected: list[RejectionPublic]


class RejectedRecordPublic(BaseModel):
    id: str
    received_at: datetime
    index: int
    kind: str | None
    record: dict[str, Any] | None = Field(
        description="the record; null when it holds text or numbers the portal does not accept"
    )
    raw: str = Field(description="the record as sent, as ASCII JSON text (refused characters as \\u escapes)")
    errors: list[FieldErrorPublic]

    @staticmethod
    def shown(raw: str) -> dict[str, Any] | None:
        record = json.loads(raw)
        return record if isinstance(record, dict) and not any(value_problems(record, limit=1)) else None


class RejectionsPublic(BaseModel):
    rejections: list[RejectedRecordPublic]


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=MAX_RECORDS,
        description="the rejections to replay; null: all of the clinic's",
    )


class ReplayResultPublic(BaseModel):
    replayed: int
    accepted: int
    rejected: list[RejectionPublic] = Field(description="still bad: kept in quarantine with these reasons")


class PurgedPublic(BaseModel):
    purged: int


class SnapshotPublic(BaseModel):
    snapshot_id: uuid.UUID
    pages: int
    started_at: datetime
    completed_at: datetime | None


class KeyRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float = Field(
        default=24, ge=0, le=24 * 30, description="how long the clinic's other keys keep working"
    )


class NewApiKeyPublic(BaseModel):
    api_key: str = Field(description="shown once; only its hash is kept")
    key_id: str


class ApiKeyPublic(BaseModel):
    key_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeysPublic(BaseModel):
    api_keys: list[ApiKeyPublic]


class SnapshotCompletion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pages: int = Field(ge=1, le=100_000, description="how many pages the connector sent")


router = APIRouter(prefix="/pims/v1", tags=["pims"])


@router.post("/records", responses={401: {"description": "bad API key"}})
@validated_per_item("records")
async def receive_records(
    batch: RecordBatch, clinic: CurrentClinic, sync: SyncDep, uow: UnitOfWork
) -> BatchResultPublic:
    result = await services.receive_records(
        uow,
        clinic.clinic_id,
        batch.records,
        phone_region=sync.settings.default_phone_region,
        pims=clinic.pims,
    )
    return _result(result)


def _result(result: services.BatchResult) -> BatchResultPublic:
    return BatchResultPublic(
        accepted=result.accepted,
        rejected=[
            RejectionPublic(
                index=r.index,
                kind=r.kind,
                errors=[FieldErrorPublic(field=e.field, message=e.message) for e in r.errors],
            )
            for r in result.rejected
        ],
    )


@router.post(
    "/{pims}/records",
    responses={401: {"description": "bad API key"}, 409: {"description": "not the clinic's PIMS"}},
)
@validated_per_item("records")
async def receive_native_records(
    pims: NativePims, batch: NativeRecordBatch, clinic: CurrentClinic, sync: SyncDep, uow: UnitOfWork
) -> BatchResultPublic:
    """Records in the clinic's PIMS's own shapes; errors name the PIMS's own fields."""
    result = await services.receive_native_records(
        uow, clinic, pims, batch.records, phone_region=sync.settings.default_phone_region
    )
    return _result(result)


@router.get("/rejections", responses={401: {"description": "bad API key"}})
async def list_rejections(
    clinic: CurrentClinic, uow: UnitOfWork, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> RejectionsPublic:
    """The clinic's rejected records, newest first."""
    rows = await services.clinic_rejections(uow, clinic.clinic_id, limit)
    return RejectionsPublic(
        rejections=[
            RejectedRecordPublic(
                id=str(row.id),
                received_at=row.received_at,
                index=row.index,
                kind=row.kind,
                record=RejectedRecordPublic.shown(row.raw),
                raw=row.raw,
                errors=row.errors,
            )
            for row in rows
        ]
    )


@router.post("/rejections/replay", responses={401: {"description": "bad API key"}, 404: {}})
async def replay_rejections(
    request_body: ReplayRequest, clinic: CurrentClinic, sync: SyncDep, uow: UnitOfWork
) -> ReplayResultPublic:
    """Replay quarantined records after a fix: the ones that pass now are applied and leave quarantine,
    the others stay with their new reasons."""
    result = await services.replay_rejections(
        uow, clinic, request_body.ids, phone_region=sync.settings.default_phone_region
    )
    return ReplayResultPublic(
        replayed=result.replayed,
        accepted=result.accepted,
        rejected=_result(services.BatchResult(result.accepted, result.rejected)).rejected,
    )


@router.delete("/rejections", responses={401: {"description": "bad API key"}})
async def purge_rejections(
    clinic: CurrentClinic,
    uow: UnitOfWork,
    before: Annotated[datetime | None, Query(description="only those received before this time")] = None,
) -> PurgedPublic:
    """Delete the clinic's quarantined records (all, or those received before a time)."""
    return PurgedPublic(purged=await services.purge_rejections(uow, clinic.clinic_id, before=before))


@router.delete("/rejections/{rejection_id}", responses={401: {"description": "bad API key"}, 404: {}})
async def purge_rejection(rejection_id: uuid.UUID, clinic: CurrentClinic, uow: UnitOfWork) -> PurgedPublic:
    purged = await services.purge_rejections(uow, clinic.clinic_id, ids=[rejection_id])
    if not purged:
        raise services.RejectionNotFound()
    return PurgedPublic(purged=purged)


@router.post(
    "/snapshots", status_code=status.HTTP_201_CREATED, responses={401: {"description": "bad API key"}}
)
async def start_snapshot(clinic: CurrentClinic, uow: UnitOfWork) -> SnapshotPublic:
    """Start a full snapshot of the clinic's contacts and patients (the nightly reconciliation): send
    its pages, then complete it with their count. Only a complete snapshot removes anything."""
    return _snapshot(await services.start_snapshot(uow, clinic.clinic_id))


@router.post(
    "/snapshots/{snapshot_id}/records", responses={401: {"description": "bad API key"}, 404: {}, 409: {}}
)
@validated_per_item("records")
async def snapshot_page(
    snapshot_id: uuid.UUID, batch: RecordBatch, clinic: CurrentClinic, sync: SyncDep, uow: UnitOfWork
) -> BatchResultPublic:
    """One page of a snapshot, canonical records: applied like any batch, its ids remembered."""
    result = await services.receive_records(
        uow,
        clinic.clinic_id,
        batch.records,
        phone_region=sync.settings.default_phone_region,
        pims=clinic.pims,
        snapshot_id=snapshot_id,
    )
    return _result(result)


@router.post(
    "/{pims}/snapshots/{snapshot_id}/records",
    responses={401: {"description": "bad API key"}, 404: {}, 409: {}},
)
@validated_per_item("records")
async def native_snapshot_page(
    pims: NativePims,
    snapshot_id: uuid.UUID,
    batch: NativeRecordBatch,
    clinic: CurrentClinic,
    sync: SyncDep,
    uow: UnitOfWork,
) -> BatchResultPublic:
    """One page of a snapshot in the PIMS's own shapes."""
    result = await services.receive_native_records(
        uow,
        clinic,
        pims,
        batch.records,
        phone_region=sync.settings.default_phone_region,
        snapshot_id=snapshot_id,
    )
    return _result(result)


@router.post(
    "/snapshots/{snapshot_id}/complete", responses={401: {"description": "bad API key"}, 404: {}, 409: {}}
)
async def complete_snapshot(
    snapshot_id: uuid.UUID, completion: SnapshotCompletion, clinic: CurrentClinic, uow: UnitOfWork
) -> SnapshotPublic:
    """All pages sent: 409 (and nothing removed) unless exactly that many arrived. The removals are
    applied by the nightly `reconcile` in the clinic's timezone, or at once by `reconcile --clinic-id`."""
    return _snapshot(await services.complete_snapshot(uow, clinic.clinic_id, snapshot_id, completion.pages))


@router.post(
    "/api-keys/rotate", status_code=status.HTTP_201_CREATED, responses={401: {"description": "bad API key"}}
)
async def rotate_api_key(rotation: KeyRotation, clinic: CurrentClinic, uow: UnitOfWork) -> NewApiKeyPublic:
    """A new key for the clinic's connector; its current keys keep working for the overlap."""
    api_key = await services.rotate_api_key(uow, clinic.clinic_id, timedelta(hours=rotation.overlap_hours))
    return NewApiKeyPublic(api_key=api_key, key_id=key_id(hash_api_key(api_key)))


@router.get("/api-keys", responses={401: {"description": "bad API key"}})
async def list_api_keys(clinic: CurrentClinic, uow: UnitOfWork) -> ApiKeysPublic:
    keys = await services.api_keys(uow, clinic.clinic_id)
    return ApiKeysPublic(api_keys=[ApiKeyPublic(**k.__dict__) for k in keys])


@router.delete(
    "/api-keys/{api_key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"description": "bad API key"}, 404: {}},
)
async def revoke_api_key(
    api_key_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$")], clinic: CurrentClinic, uow: UnitOfWork
) -> None:
    """The key stops working at once (this very key too, if it is the one sending the request)."""
    await services.revoke_api_key(uow, clinic.clinic_id, api_key_id)


def _snapshot(snapshot: Snapshot) -> SnapshotPublic:
    return SnapshotPublic(
        snapshot_id=snapshot.id,
        pages=snapshot.pages,
        started_at=snapshot.started_at,
        completed_at=snapshot.completed_at,
    )


# Domain errors answered over HTTP, for every route.
ERRORS: ErrorStatuses = {
    services.WrongPims: status.HTTP_409_CONFLICT,
    services.RejectionNotFound: status.HTTP_404_NOT_FOUND,
    SnapshotNotFound: status.HTTP_404_NOT_FOUND,
    ApiKeyNotFound: status.HTTP_404_NOT_FOUND,
    SnapshotClosed: status.HTTP_409_CONFLICT,
    SnapshotIncomplete: status.HTTP_409_CONFLICT,
    **booking_api.ERRORS,
    InvalidApiKey: ErrorAnswer(
        status.HTTP_401_UNAUTHORIZED, headers=lambda _: {"WWW-Authenticate": "Bearer"}
    ),
}


def create_app(container: Sync | None = None) -> FastAPI:
    container = container or bootstrap()
    app = container.runtime.create_app(
        title="Pet Portal sync", routers=[router, *booking_api.ROUTERS], errors=ERRORS
    )
    app.state.container = container
    return app
