"""Appointment requests: the parent asks for a visit for one of their pets (a reason and up to three
preferred times); the clinic accepts with a time, declines, or proposes another time. Kept by pets,
next to the pets and appointments they are about (docs/architecture.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

MAX_PREFERRED = 3
MAX_TEXT = 500


class RequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    PROPOSED = "proposed"  # the clinic offers another time
    CANCELLED = "cancelled"  # by the parent, while pending


# The statuses of a request the clinic has answered: the parent can see the answer.
ANSWERED = frozenset({RequestStatus.ACCEPTED, RequestStatus.DECLINED, RequestStatus.PROPOSED})


class Decision(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    PROPOSE = "propose"


class InvalidRequest(ValueError):
    """The request or the answer breaks a rule; the message says which."""


class RequestNotFound(LookupError):
    def __init__(self) -> None:
        super().__init__("no such appointment request")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppointmentRequest:
    clinic_id: str
    client_id: str
    patient_id: str
    reason: str
    preferred_times: list[datetime]
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: RequestStatus = RequestStatus.PENDING
    answer_time: datetime | None = None
    note: str | None = None
    created_at: datetime = field(default_factory=now)
    answered_at: datetime | None = None
    seen_at: datetime | None = None  # when the parent saw the clinic's answer

    @classmethod
    def new(
        cls,
        clinic_id: str,
        client_id: str,
        patient_id: str,
        reason: str,
        preferred: list[datetime],
        at: datetime,
    ) -> AppointmentRequest:
        reason = reason.strip()
        if not reason or len(reason) > MAX_TEXT:
            raise InvalidRequest(f"give a reason of 1 to {MAX_TEXT} characters")
        if not 1 <= len(preferred) <= MAX_PREFERRED:
            raise InvalidRequest(f"give 1 to {MAX_PREFERRED} preferred times")
        if any(t.tzinfo is None for t in preferred):
            raise InvalidRequest("preferred times need a timezone")
        if any(t <= at for t in preferred):
            raise InvalidRequest("preferred times must be in the future")
        return cls(clinic_id, client_id, patient_id, reason, sorted(set(preferred)), created_at=at)

    def answer(self, decision: Decision, time: datetime | None, note: str | None, at: datetime) -> None:
        """The clinic's answer, once, to a pending request."""
        if self.status is not RequestStatus.PENDING:
            raise InvalidRequest(f"the request is {self.status.value}, not pending")
        if note is not None and len(note) > MAX_TEXT:
            raise InvalidRequest(f"a note is at most {MAX_TEXT} characters")
        if decision is Decision.DECLINE:
            if time is not None:
                raise InvalidRequest("a declined request has no time")
            self.status = RequestStatus.DECLINED
        else:
            if time is None or time.tzinfo is None or time <= at:
                raise InvalidRequest("accepting or proposing needs a future time with a timezone")
            self.status = RequestStatus.ACCEPTED if decision is Decision.ACCEPT else RequestStatus.PROPOSED
            self.answer_time = time
        self.note = note.strip() if note and note.strip() else None
        self.answered_at = at

    def see(self, at: datetime) -> bool:
        """The parent has seen the clinic's answer; True the first time only (then it changes nothing)."""
        if self.status not in ANSWERED:
            raise InvalidRequest(f"the request is {self.status.value}: the clinic has not answered it")
        if self.seen_at is not None:
            return False
        self.seen_at = at
        return True

    def cancel(self) -> None:
        if self.status is not RequestStatus.PENDING:
            raise InvalidRequest(f"the request is {self.status.value}: only a pending one can be cancelled")
        self.status = RequestStatus.CANCELLED
