"""The request use cases on the in-memory unit of work: what each stores and publishes, once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_pets.domain import Pet, PetRecord
from petportal_pets.domain.refills import (
    InvalidRefill,
    RefillConflict,
    RefillDecision,
    RefillNotFound,
    RefillStatus,
)
from petportal_pets.domain.requests import Decision, InvalidRequest, RequestNotFound
from petportal_pets.service_layer import services
from petportal_runtime.auth import ClientRef
from petportal_schemas import (
    AppointmentRequestAnswered,
    AppointmentRequested,
    MedicationPrescribed,
    RefillRequestDecided,
    RefillRequested,
    RequestAnswerSeen,
    topics,
)

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)
CLINIC, CLIENT = "clinic-1", "C-1"
ME = ClientRef(clinic_id=CLINIC, client_id=CLIENT)


def prescribe(repositories: Any, client_id: str, patient_id: str, prescription_id: str, **kw: Any) -> None:
    event = MedicationPrescribed(
        prescription_id=prescription_id,
        patient_id=patient_id,
        name=f"Carprofen for {patient_id}",
        prescribed_on=date(2026, 12, 1),
        **({"refills_remaining": 1} | kw),
    )
    record = PetRecord("medication", prescription_id, patient_id, event.model_dump(mode="json"))
    repositories.records.stored[(CLINIC, "medication", prescription_id)] = (client_id, record, NOW)


@pytest.fixture
def family(repositories: Any) -> Any:
    for client_id, patient_id in ((CLIENT, "p-1"), ("C-2", "p-2")):
        repositories.pets.stored[(CLINIC, patient_id)] = Pet(CLINIC, client_id, patient_id, "Rex", "canine")
        prescribe(repositories, client_id, patient_id, f"m-{patient_id}")
    prescribe(repositories, CLIENT, "p-1", "m-none", refills_remaining=0)
    return repositories


def events(uow: FakeUnitOfWork[Any]) -> list[Any]:
    assert {(e.topic, e.producer, e.key) for e in uow.published} <= {
        (topics.PETS, "pets", f"{CLINIC}:{CLIENT}")
    }
    return [e.event() for e in uow.published]


async def test_an_answer_is_published_with_it_and_seen_once(uow: FakeUnitOfWork[Any], family: Any) -> None:
    later = NOW + timedelta(days=2)
    request = await services.request_appointment(
        uow, [ME], patient_id="p-1", clinic_id=None, reason="Limping", preferred=[later], at=NOW
    )
    # The PIMS hears of it (sync's outbound queue): ids and times, never the parent's words.
    assert events(uow) == [
        AppointmentRequested(
            request_id=request.id, patient_id="p-1", preferred_times=[later], requested_at=NOW
        )
    ]
    assert "Limping" not in uow.published[0].model_dump_json()
    uow.published.clear()
    with pytest.raises(InvalidRequest):
        await services.see_request(uow, [ME], request.id, NOW)
    with pytest.raises(RequestNotFound):
        await services.answer_request(
            uow, "clinic-9", request.id, decision=Decision.DECLINE, time=None, note=None, at=NOW
        )
    await services.answer_request(
        uow, CLINIC, request.id, decision=Decision.PROPOSE, time=later, note="Not Monday", at=NOW
    )
    [answered] = events(uow)
    assert answered == AppointmentRequestAnswered(
        request_id=request.id, patient_id="p-1", outcome="proposed", appointment_at=later, answered_at=NOW
    )

    # Another parent cannot mark it seen; the parent can, once.
    with pytest.raises(RequestNotFound):
        await services.see_request(uow, [ClientRef(clinic_id=CLINIC, client_id="C-2")], request.id, NOW)
    seen = NOW + timedelta(hours=1)
    for at in (seen, seen + timedelta(hours=1)):
        assert (await services.see_request(uow, [ME], request.id, at)).seen_at == seen
    assert events(uow)[1:] == [RequestAnswerSeen(request_id=request.id, kind="appointment", seen_at=seen)]
    assert family.requests.stored[request.id].seen_at == seen


@pytest.mark.parametrize(
    ("decision", "outcome"), [(Decision.ACCEPT, "accepted"), (Decision.DECLINE, "declined")]
)
async def test_each_answer_has_its_outcome(
    uow: FakeUnitOfWork[Any], family: Any, decision: Decision, outcome: str
) -> None:
    later = NOW + timedelta(days=2)
    request = await services.request_appointment(
        uow, [ME], patient_id="p-1", clinic_id=None, reason="Limping", preferred=[later], at=NOW
    )
    time = None if decision is Decision.DECLINE else later
    await services.answer_request(uow, CLINIC, request.id, decision=decision, time=time, note=None, at=NOW)
    [_requested, answered] = events(uow)
    assert isinstance(answered, AppointmentRequestAnswered)
    assert (answered.outcome, answered.appointment_at) == (outcome, time)


async def test_a_refill_is_asked_decided_and_seen_each_published_once(
    uow: FakeUnitOfWork[Any], family: Any
) -> None:
    request = await services.request_refill(
        uow, ME, patient_id="p-1", prescription_id="m-p-1", note="Running low", at=NOW
    )
    assert (request.medication, request.note, request.status) == (
        "Carprofen for p-1",
        "Running low",
        RefillStatus.PENDING,
    )
    assert events(uow) == [
        RefillRequested(request_id=request.id, patient_id="p-1", prescription_id="m-p-1", requested_at=NOW)
    ]
    # One pending request per prescription.
    with pytest.raises(RefillConflict, match="already pending") as refused:
        await services.request_refill(uow, ME, patient_id="p-1", prescription_id="m-p-1", note=None, at=NOW)
    assert refused.value.field == "prescription_id"
    with pytest.raises(RefillConflict, match="not decided"):
        await services.see_refill(uow, [ME], request.id, NOW)
    assert [r.id for r in await services.clinic_refills(uow, CLINIC, RefillStatus.PENDING)] == [request.id]

    decided = NOW + timedelta(hours=1)
    with pytest.raises(InvalidRefill):
        await services.decide_refill(
            uow, CLINIC, request.id, decision=RefillDecision.DENY, note=None, at=decided
        )
    with pytest.raises(RefillNotFound):
        await services.decide_refill(
            uow, "clinic-9", request.id, decision=RefillDecision.APPROVE, note=None, at=decided
        )
    await services.decide_refill(
        uow, CLINIC, request.id, decision=RefillDecision.DENY, note="Needs a check-up", at=decided
    )
    with pytest.raises(RefillConflict, match="already denied"):
        await services.decide_refill(
            uow, CLINIC, request.id, decision=RefillDecision.APPROVE, note=None, at=decided
        )
    assert await services.clinic_refills(uow, CLINIC, RefillStatus.PENDING) == []

    with pytest.raises(RefillNotFound):
        await services.see_refill(uow, [ClientRef(clinic_id=CLINIC, client_id="C-2")], request.id, NOW)
    seen = NOW + timedelta(hours=2)
    for at in (seen, seen + timedelta(hours=1)):
        await services.see_refill(uow, [ME], request.id, at)
    assert events(uow)[1:] == [
        RefillRequestDecided(
            request_id=request.id,
            patient_id="p-1",
            prescription_id="m-p-1",
            outcome="denied",
            decided_at=decided,
        ),
        RequestAnswerSeen(request_id=request.id, kind="refill", seen_at=seen),
    ]
    [listed] = await services.parent_refills(uow, [ME])
    assert (listed.status, listed.clinic_note, listed.decided_at, listed.seen_at) == (
        RefillStatus.DENIED,
        "Needs a check-up",
        decided,
        seen,
    )
    # Decided: the prescription can be asked for again.
    again = await services.request_refill(
        uow, ME, patient_id="p-1", prescription_id="m-p-1", note=None, at=seen
    )
    assert [r.id for r in await services.parent_refills(uow, [ME])] == [again.id, request.id]


@pytest.mark.parametrize(
    ("acting", "patient_id", "prescription_id", "error", "field"),
    [
        (ME, "p-2", "m-p-2", RefillNotFound, "patient_id"),  # another client's pet
        (ME, "p-9", "m-p-1", RefillNotFound, "patient_id"),  # no such pet
        (ME, "p-1", "m-p-2", RefillNotFound, "prescription_id"),  # another pet's prescription
        (ME, "p-1", "m-9", RefillNotFound, "prescription_id"),
        (ME, "p-1", "m-none", RefillConflict, "prescription_id"),  # no refills left
        # The pet is the parent's at the clinic they do not act at.
        (ClientRef(clinic_id="clinic-2", client_id=CLIENT), "p-1", "m-p-1", RefillNotFound, "patient_id"),
    ],
)
async def test_a_refill_request_that_is_not_allowed_is_refused_naming_the_field(
    uow: FakeUnitOfWork[Any],
    family: Any,
    acting: ClientRef,
    patient_id: str,
    prescription_id: str,
    error: type[Exception],
    field: str,
) -> None:
    with pytest.raises(error) as refused:
        await services.request_refill(
            uow, acting, patient_id=patient_id, prescription_id=prescription_id, note=None, at=NOW
        )
    assert getattr(refused.value, "field", None) == field
    assert family.refills.stored == {}
    assert uow.published == []


async def test_an_unknown_refill_request_is_not_found(uow: FakeUnitOfWork[Any], family: Any) -> None:
    with pytest.raises(RefillNotFound):
        await services.see_refill(uow, [ME], uuid.uuid4(), NOW)
