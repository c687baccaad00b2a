"""Prescription refill requests: which prescriptions a parent may ask a refill of, and how the clinic
decides once and the parent sees the decision once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from petportal_pets.domain.refills import (
    InvalidRefill,
    RefillConflict,
    RefillDecision,
    RefillNotFound,
    RefillRequest,
    RefillStatus,
)
from petportal_schemas import MedicationPrescribed

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)


def medication(**changes: Any) -> MedicationPrescribed:
    values: dict[str, Any] = {
        "prescription_id": "m-1",
        "patient_id": "p-1",
        "name": "Carprofen 50 mg",
        "refills_remaining": 2,
        "prescribed_on": date(2026, 12, 1),
    }
    return MedicationPrescribed(**(values | changes))


def new(found: MedicationPrescribed | None = None, note: str | None = None) -> RefillRequest:
    return RefillRequest.new("c1", "k1", "p-1", "m-1", found or medication(), note, NOW)


def test_a_current_prescription_with_refills_left_can_be_asked_for() -> None:
    request = new(note="  Running low  ")
    assert (request.status, request.medication, request.note, request.created_at) == (
        RefillStatus.PENDING,
        "Carprofen 50 mg",
        "Running low",
        NOW,
    )
    assert (request.clinic_note, request.decided_at, request.seen_at) == (None, None, None)
    assert new(medication(expires_on=NOW.date())).status is RefillStatus.PENDING  # expires today
    assert new(note="   ").note is None


def test_a_prescription_the_pet_does_not_have_is_not_found() -> None:
    with pytest.raises(RefillNotFound, match="no prescription m-1") as refused:
        RefillRequest.new("c1", "k1", "p-1", "m-1", None, None, NOW)
    assert refused.value.field == "prescription_id"
    with pytest.raises(RefillNotFound):  # a medication, but not this prescription
        RefillRequest.new("c1", "k1", "p-1", "m-1", medication(prescription_id="m-2"), None, NOW)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"refills_remaining": 0}, "no refills left"),
        ({"active": False}, "no longer current"),
        ({"expires_on": date(2026, 12, 31)}, "no longer current"),
    ],
)
def test_a_prescription_that_cannot_be_refilled_is_refused_naming_it(
    changes: dict[str, Any], why: str
) -> None:
    with pytest.raises(RefillConflict, match=why) as refused:
        new(medication(**changes))
    assert refused.value.field == "prescription_id"


def test_a_note_is_at_most_500_characters() -> None:
    with pytest.raises(InvalidRefill) as refused:
        new(note="x" * 501)
    assert refused.value.field == "note"
    assert new(note="x" * 500).note == "x" * 500


@pytest.mark.parametrize(
    ("decision", "note", "status", "kept"),
    [
        (RefillDecision.APPROVE, None, RefillStatus.APPROVED, None),
        (RefillDecision.APPROVE, " Ready Friday ", RefillStatus.APPROVED, "Ready Friday"),
        (RefillDecision.DENY, "Needs a check-up first", RefillStatus.DENIED, "Needs a check-up first"),
    ],
)
def test_the_clinic_decides_once(
    decision: RefillDecision, note: str | None, status: RefillStatus, kept: str | None
) -> None:
    request = new()
    request.decide(decision, note, NOW + timedelta(hours=1))
    assert (request.status, request.clinic_note, request.decided_at) == (
        status,
        kept,
        NOW + timedelta(hours=1),
    )
    with pytest.raises(RefillConflict, match=f"already {status.value}") as refused:
        request.decide(RefillDecision.APPROVE, None, NOW + timedelta(hours=2))
    assert refused.value.field == "request_id"
    assert request.decided_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize("note", [None, "", "   "])
def test_a_denial_says_why(note: str | None) -> None:
    request = new()
    with pytest.raises(InvalidRefill, match="note") as refused:
        request.decide(RefillDecision.DENY, note, NOW)
    assert refused.value.field == "note"
    assert request.status is RefillStatus.PENDING


def test_a_clinic_note_is_at_most_500_characters() -> None:
    with pytest.raises(InvalidRefill):
        new().decide(RefillDecision.DENY, "x" * 501, NOW)


def test_the_decision_is_seen_once_and_only_once_there_is_one() -> None:
    request = new()
    with pytest.raises(RefillConflict, match="not decided"):
        request.see(NOW)
    request.decide(RefillDecision.APPROVE, None, NOW)
    assert request.see(NOW + timedelta(minutes=5))
    assert not request.see(NOW + timedelta(minutes=9))
    assert request.seen_at == NOW + timedelta(minutes=5)
