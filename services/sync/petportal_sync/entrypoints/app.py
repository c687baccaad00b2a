"""sync's HTTP API for PIMS connectors, authenticated by the clinic's API key."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from petportal_runtime.container import container_of
from petportal_runtime.edge import validated_per_item
from petportal_runtime.errors import ErrorAnswer, ErrorStatuses
from petportal_runtime.text import value_problems
from petportal_schemas.pims import PimsName

from ..bootstrap import Sync, bootstrap
from ..domain.clinics import Clinic, InvalidApiKey
from ..service_layer import services
from ..service_layer.unit_of_work import SyncUnitOfWork
from ..settings import MAX_RECORDS


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


def _sync(request: Request) -> Sync:
    sync: Sync = container_of(request)
    return sync


def _unit_of_work(request: Request) -> SyncUnitOfWork:
    return _sync(request).unit_of_work()


SyncDep = Annotated[Sync, Depends(_sync)]
UnitOfWork = Annotated[SyncUnitOfWork, Depends(_unit_of_work)]
_bearer = HTTPBearer(auto_error=False)


async def current_clinic(
    uow: UnitOfWork, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Clinic:
    """The clinic whose API key the request carries (`InvalidApiKey`, answered 401, otherwise)."""
    return await services.authenticate_clinic(uow, credentials.credentials if credentials else None)


CurrentClinic = Annotated[Clinic, Depends(current_clinic)]

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


# Domain errors answered over HTTP, for every route.
ERRORS: ErrorStatuses = {
    services.WrongPims: status.HTTP_409_CONFLICT,
    InvalidApiKey: ErrorAnswer(
        status.HTTP_401_UNAUTHORIZED, headers=lambda _: {"WWW-Authenticate": "Bearer"}
    ),
}


def create_app(container: Sync | None = None) -> FastAPI:
    container = container or bootstrap()
    app = container.runtime.create_app(title="Pet Portal sync", routers=[router], errors=ERRORS)
    app.state.container = container
    return app
