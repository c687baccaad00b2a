"""Prescription refill requests over HTTP: the parent asks and follows; the clinic reads and decides.

A refused request is answered `{"detail": <message>, "field": <the field at fault>}`: 404 for a pet,
prescription or request that is not the caller's (alike for someone else's and none), 409 when the
state forbids it (no refills left, not current, one pending, already decided, not decided yet). A
denial without a note is a validation error like any other (422, `loc` ["body", "note"]).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from petportal_runtime.auth import ClientRef, CurrentParent, CurrentStaff
from petportal_runtime.errors import ErrorStatuses
from petportal_runtime.text import Text
from petportal_schemas.envelope import ID_PATTERN

from ..domain.refills import (
    MAX_NOTE,
    InvalidRefill,
    RefillConflict,
    RefillDecision,
    RefillNotFound,
    RefillRequest,
    RefillStatus,
)
from ..service_layer import services
from .dependencies import UnitOfWork

RefillId = Annotated[uuid.UUID, Path(description="a refill request")]


class RefillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(pattern=ID_PATTERN, description="one of your pets at the clinic you act at")
    prescription_id: str = Field(pattern=ID_PATTERN, description="one of the pet's current prescriptions")
    note: Text | None = Field(default=None, max_length=MAX_NOTE, description="for the clinic")


class RefillDecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: RefillDecision
    note: Text | None = Field(
        default=None, max_length=MAX_NOTE, description="shown to the parent; required to deny"
    )


class RefillPublic(BaseModel):
    request_id: uuid.UUID
    clinic_id: str
    client_id: str
    patient_id: str
    prescription_id: str
    medication_name: str = Field(description="the prescription's name when the refill was asked for")
    parent_note: str | None
    status: RefillStatus
    clinic_note: str | None = Field(description="the clinic's note with its decision")
    created_at: datetime
    decided_at: datetime | None
    seen_at: datetime | None = Field(description="when the parent saw the clinic's decision")

    @classmethod
    def of(cls, r: RefillRequest) -> RefillPublic:
        return cls(
            request_id=r.id,
            clinic_id=r.clinic_id,
            client_id=r.client_id,
            patient_id=r.patient_id,
            prescription_id=r.prescription_id,
            medication_name=r.medication,
            parent_note=r.note,
            status=r.status,
            clinic_note=r.clinic_note,
            created_at=r.created_at,
            decided_at=r.decided_at,
            seen_at=r.seen_at,
        )


class RefillList(BaseModel):
    requests: list[RefillPublic]


class RefillProblem(BaseModel):
    detail: str
    field: str = Field(description="the request's field at fault")


def _answer(description: str) -> dict[str, Any]:
    return {"description": description, "model": RefillProblem}


parent = APIRouter(prefix="/api/v1/refill-requests", tags=["pets"])
clinic = APIRouter(prefix="/clinic/v1/refill-requests", tags=["clinic"])


@parent.post(
    "",
    status_code=201,
    responses={
        404: _answer("no such pet or prescription of yours (field: patient_id or prescription_id)"),
        409: _answer("the prescription is not current, has no refills left, or has a request pending"),
    },
)
async def request_refill(body: RefillCreate, me: CurrentParent, uow: UnitOfWork) -> RefillPublic:
    """Ask the clinic for a refill of one of your pet's current prescriptions that has refills left
    (one pending request per prescription)."""
    request = await services.request_refill(
        uow,
        ClientRef(clinic_id=me.clinic_id, client_id=me.client_id),
        patient_id=body.patient_id,
        prescription_id=body.prescription_id,
        note=body.note,
        at=datetime.now(UTC),
    )
    return RefillPublic.of(request)


@parent.get("")
async def my_refills(me: CurrentParent, uow: UnitOfWork) -> RefillList:
    """Your refill requests at all your clinics, newest first, with the clinic's decisions."""
    return RefillList(
        requests=[RefillPublic.of(r) for r in await services.parent_refills(uow, me.memberships)]
    )


@parent.post(
    "/{request_id}/seen",
    status_code=204,
    responses={
        404: _answer("no such refill request of yours"),
        409: _answer("the clinic has not decided yet"),
    },
)
async def see_decision(request_id: RefillId, me: CurrentParent, uow: UnitOfWork) -> None:
    """You have seen the clinic's decision: it leaves your To-Do list. Again changes nothing."""
    await services.see_refill(uow, me.memberships, request_id, datetime.now(UTC))


@clinic.get("")
async def clinic_refills(
    staff: CurrentStaff, uow: UnitOfWork, status: Annotated[RefillStatus | None, Query()] = None
) -> RefillList:
    """The clinic's refill requests, newest first (only pending ones with ?status=pending)."""
    found = await services.clinic_refills(uow, staff.clinic_id, status)
    return RefillList(requests=[RefillPublic.of(r) for r in found])


@clinic.post(
    "/{request_id}/decision",
    responses={
        404: _answer("no such refill request at the clinic"),
        409: _answer("already decided"),
    },
)
async def decide_refill(
    request_id: RefillId, body: RefillDecisionBody, staff: CurrentStaff, uow: UnitOfWork
) -> RefillPublic:
    """Approve, or deny with a note saying why (shown to the parent); once. A denial without a note is
    a validation error (422) on `note`."""
    request = await services.decide_refill(
        uow, staff.clinic_id, request_id, decision=body.decision, note=body.note, at=datetime.now(UTC)
    )
    return RefillPublic.of(request)


# Refusals answer {"detail", "field"}; a denial without a note is a validation error on `note`.
ERRORS: ErrorStatuses = {RefillNotFound: 404, RefillConflict: 409, InvalidRefill: 422}
