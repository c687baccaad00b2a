"""Prescription refill requests: the parent asks for a refill of one of their pet's current
prescriptions that has refills left; the clinic approves or denies it (saying why), once. Kept by pets,
next to the medications they are about."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from petportal_runtime.errors import Refusal
from petportal_schemas import MedicationPrescribed

MAX_NOTE = 500


class RefillStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class RefillDecision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class RefillError(Refusal):
    """A refill request or decision the rules refuse; `field` names the part of the request at fault.
    The message is shown to the caller."""


class RefillNotFound(RefillError):
    """No such pet, prescription or request of the caller's (whether missing or someone else's)."""


class RefillConflict(RefillError):
    """The request cannot be made or changed in its current state (no refills left, already pending,
    already decided, not decided yet)."""


class InvalidRefill(RefillError):
    """A value breaks a rule (a denial without a note)."""


def _note(note: str | None, name: str) -> str | None:
    note = note.strip() if note else None
    if note and len(note) > MAX_NOTE:
        raise InvalidRefill(name, f"a note is at most {MAX_NOTE} characters")
    return note or None


def check_refillable(
    medication: MedicationPrescribed | None, prescription_id: str, at: datetime
) -> MedicationPrescribed:
    """The pet's prescription if a refill can be asked for it at `at`: current (active, not expired
    on `at`'s UTC date, as the medications list shows it) with refills left. `RefillNotFound` when
    the pet has no such prescription, `RefillConflict` otherwise."""
    if medication is None or medication.prescription_id != prescription_id:
        raise RefillNotFound("prescription_id", f"no prescription {prescription_id} for this pet")
    if not medication.active or (
        medication.expires_on is not None and medication.expires_on < at.astimezone(UTC).date()
    ):
        raise RefillConflict(
            "prescription_id", "this prescription is no longer current: ask the clinic for a new one"
        )
    if medication.refills_remaining <= 0:
        raise RefillConflict(
            "prescription_id", "this prescription has no refills left: ask the clinic for a new one"
        )
    return medication


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RefillRequest:
    clinic_id: str
    client_id: str
    patient_id: str
    prescription_id: str
    medication: str  # the prescription's name when it was asked for
    note: str | None = None  # the parent's
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: RefillStatus = RefillStatus.PENDING
    clinic_note: str | None = None
    created_at: datetime = field(default_factory=now)
    decided_at: datetime | None = None
    seen_at: datetime | None = None  # when the parent saw the clinic's decision

    @classmethod
    def new(
        cls,
        clinic_id: str,
        client_id: str,
        patient_id: str,
        prescription_id: str,
        medication: MedicationPrescribed | None,
        note: str | None,
        at: datetime,
    ) -> RefillRequest:
        """A pending request for a refill of the pet's `medication` (None: the pet has no prescription
        `prescription_id`); refused unless the prescription is current with refills left."""
        found = check_refillable(medication, prescription_id, at)
        return cls(
            clinic_id,
            client_id,
            patient_id,
            prescription_id,
            found.name,
            _note(note, "note"),
            created_at=at,
        )

    def decide(self, decision: RefillDecision, note: str | None, at: datetime) -> None:
        """The clinic approves or denies a pending request, once; a denial says why (a note)."""
        if self.status is not RefillStatus.PENDING:
            raise RefillConflict("request_id", f"the request is already {self.status.value}")
        note = _note(note, "note")
        if decision is RefillDecision.DENY and note is None:
            raise InvalidRefill("note", "a denial needs a note saying why")
        self.status = RefillStatus.APPROVED if decision is RefillDecision.APPROVE else RefillStatus.DENIED
        self.clinic_note = note
        self.decided_at = at

    def see(self, at: datetime) -> bool:
        """The parent has seen the clinic's decision; True the first time only (then it changes nothing)."""
        if self.status is RefillStatus.PENDING:
            raise RefillConflict("request_id", "the clinic has not decided on this request yet")
        if self.seen_at is not None:
            return False
        self.seen_at = at
        return True
