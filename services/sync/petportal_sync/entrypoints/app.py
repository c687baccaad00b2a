"""sync's HTTP API for PIMS connectors, authenticated by the clinic's API key."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from petportal_runtime.container import container_of
from petportal_runtime.edge import validated_per_item
from petportal_runtime.text import value_problems
from petportal_schemas.events import PimsName

from ..adapters.repository import Clinic, SyncRepository
from ..bootstrap import Sync, bootstrap
from ..service_layer import services
from ..settings import MAX_RECORDS


class RecordBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pims: PimsName
    # Each record is validated on its own (see domain.records); here only the batch's shape.
    records: list[dict[str, Any]] = Field(max_length=MAX_RECORDS)


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


SyncDep = Annotated[Sync, Depends(_sync)]
_bearer = HTTPBearer(auto_error=False)


async def current_clinic(
    sync: SyncDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Clinic:
    clinic = None
    if credentials is not None:
        async with sync.runtime.transaction() as session:
            clinic = await services.authenticate_clinic(session, credentials.credentials)
    if clinic is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a valid clinic API key is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return clinic


CurrentClinic = Annotated[Clinic, Depends(current_clinic)]

router = APIRouter(prefix="/pims/v1", tags=["pims"])


@router.post("/records", responses={401: {"description": "bad API key"}})
@validated_per_item("records")
async def receive_records(batch: RecordBatch, clinic: CurrentClinic, sync: SyncDep) -> BatchResultPublic:
    async with sync.runtime.transaction() as session:
        result = await services.receive_records(
            session,
            clinic.clinic_id,
            batch.records,
            phone_region=sync.settings.default_phone_region,
            pims=clinic.pims,
        )
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


@router.get("/rejections", responses={401: {"description": "bad API key"}})
async def list_rejections(
    clinic: CurrentClinic, sync: SyncDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> RejectionsPublic:
    """The clinic's rejected records, newest first."""
    async with sync.runtime.transaction() as session:
        rows = await SyncRepository(session).rejections(clinic.clinic_id, limit)
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


def create_app(container: Sync | None = None) -> FastAPI:
    sync = container or bootstrap()
    app = sync.runtime.create_app(title="Pet Portal sync", routers=[router])
    app.state.container = sync
    return app
