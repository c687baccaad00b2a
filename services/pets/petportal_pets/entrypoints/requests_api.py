"""Appointment requests over HTTP: the parent asks and follows; the clinic reads and answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from petportal_runtime.auth import CurrentParent, CurrentStaff
from petportal_runtime.text import Text
from petportal_schemas.envelope import ID_PATTERN

from ..domain.requests import MAX_PREFERRED, MAX_TEXT, AppointmentRequest, Decision, RequestStatus
from ..service_layer import services
from .dependencies import UnitOfWork

RequestId = Annotated[uuid.UUID, Path(description="an appointment request")]


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(pattern=ID_PATTERN)
    clinic_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="when the pet's id is at two clinics"
    )
    reason: Text = Field(min_length=1, max_length=MAX_TEXT)
    preferred_times: list[AwareDatetime] = Field(min_length=1, max_length=MAX_PREFERRED)


class RequestAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    time: AwareDatetime | None = Field(
        default=None, description="the appointment's time: to accept or propose"
    )
    note: Text | None = Field(default=None, max_length=MAX_TEXT)


class RequestPublic(BaseModel):
    request_id: uuid.UUID
    clinic_id: str
    client_id: str
    patient_id: str
    reason: str
    preferred_times: list[datetime]
    status: RequestStatus
    answer_time: datetime | None
    note: str | None
    created_at: datetime
    answered_at: datetime | None
    seen_at: datetime | None = Field(description="when the parent saw the clinic's answer")

    @classmethod
    def of(cls, r: AppointmentRequest) -> RequestPublic:
        return cls(
            request_id=r.id,
            clinic_id=r.clinic_id,
            client_id=r.client_id,
            patient_id=r.patient_id,
            reason=r.reason,
            preferred_times=r.preferred_times,
            status=r.status,
            answer_time=r.answer_time,
            note=r.note,
            created_at=r.created_at,
            answered_at=r.answered_at,
            seen_at=r.seen_at,
        )


class RequestList(BaseModel):
    requests: list[RequestPublic]


parent = APIRouter(prefix="/api/v1/appointment-requests", tags=["pets"])
clinic = APIRouter(prefix="/clinic/v1/appointment-requests", tags=["clinic"])
_BAD: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such request (or pet) of yours"},
    409: {"description": "not pending any more"},
}


@parent.post("", status_code=201, responses=_BAD)
async def request_appointment(body: RequestCreate, me: CurrentParent, uow: UnitOfWork) -> RequestPublic:
    """Ask the clinic for a visit for one of your pets: a reason and up to three preferred times."""
    request = await services.request_appointment(
        uow,
        me.memberships,
        patient_id=body.patient_id,
        clinic_id=body.clinic_id,
        reason=body.reason,
        preferred=list(body.preferred_times),
        at=datetime.now(UTC),
    )
    return RequestPublic.of(request)


@parent.get("")
async def my_requests(me: CurrentParent, uow: UnitOfWork) -> RequestList:
    """Your requests at all your clinics, newest first, with the clinic's answers."""
    return RequestList(
        requests=[RequestPublic.of(r) for r in await services.parent_requests(uow, me.memberships)]
    )


@parent.post("/{request_id}/cancel", responses=_BAD)
async def cancel_request(request_id: RequestId, me: CurrentParent, uow: UnitOfWork) -> RequestPublic:
    return RequestPublic.of(await services.cancel_request(uow, me.memberships, request_id))


@parent.post(
    "/{request_id}/seen",
    status_code=204,
    responses={404: _BAD[404], 409: {"description": "the clinic has not answered yet"}},
)
async def see_answer(request_id: RequestId, me: CurrentParent, uow: UnitOfWork) -> None:
    """You have seen the clinic's answer: it leaves your To-Do list. Again changes nothing."""
    await services.see_request(uow, me.memberships, request_id, datetime.now(UTC))


@clinic.get("")
async def clinic_requests(
    staff: CurrentStaff, uow: UnitOfWork, status: Annotated[RequestStatus | None, Query()] = None
) -> RequestList:
    """The clinic's appointment requests, newest first (only pending ones with ?status=pending)."""
    found = await services.clinic_requests(uow, staff.clinic_id, status)
    return RequestList(requests=[RequestPublic.of(r) for r in found])


@clinic.post("/{request_id}/answer", responses=_BAD)
async def answer_request(
    request_id: RequestId, body: RequestAnswer, staff: CurrentStaff, uow: UnitOfWork
) -> RequestPublic:
    """Accept (with the appointment's time), decline, or propose another time; once."""
    request = await services.answer_request(
        uow,
        staff.clinic_id,
        request_id,
        decision=body.decision,
        time=body.time,
        note=body.note,
        at=datetime.now(UTC),
    )
    return RequestPublic.of(request)
