"""Online booking: the PIMS's free slots, a parent's short hold on one, and the booking written to the
outbound queue for the PIMS to take or refuse.

Who gets a slot is decided by one conditional UPDATE in the database (adapters.repository), so two
parents can never hold or book the same slot; this module holds the rules around it. A hold lasts
`hold_ttl` (BOOKING_HOLD_SECONDS) and frees the slot by expiring, with no job to run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from petportal_runtime.errors import Refusal

MAX_NOTE = 500
NOT_OFFERED = "this clinic does not take online bookings: send an appointment request instead"
TAKEN = "someone else has just taken this time: pick another"


class BookingStatus(StrEnum):
    PENDING = "pending"  # in the outbound queue, waiting for the PIMS
    CONFIRMED = "confirmed"  # the PIMS took it
    REJECTED = "rejected"  # the PIMS refused it (or staff dismissed it): the slot is free again
    NEEDS_STAFF = "needs_staff"  # the PIMS could not match the client or pet: staff sort it out


class BookingError(Refusal):
    """A hold or booking the rules refuse; `field` names the part of the request at fault. The message
    is shown to the caller."""


class BookingNotFound(BookingError):
    """No such slot, pet, hold, booking or appointment of the caller's (missing or someone else's)."""


class BookingConflict(BookingError):
    """The slot is taken or held by another parent, the hold expired, or the state forbids it."""


class BookingNotOffered(BookingError):
    """The clinic does not take direct online bookings (its booking mode is not "direct")."""


class InvalidBooking(BookingError):
    """A value breaks a rule (a date range too long)."""


@dataclass(frozen=True)
class Slot:
    clinic_id: str
    slot_id: str
    starts_at: datetime
    duration_minutes: int
    appointment_type: str | None = None
    provider: str | None = None


@dataclass(frozen=True)
class Hold:
    id: uuid.UUID
    clinic_id: str
    slot_id: str
    expires_at: datetime


@dataclass
class Booking:
    clinic_id: str
    client_id: str
    patient_id: str
    slot: Slot
    note: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: BookingStatus = BookingStatus.PENDING
    reason: str | None = None  # the connector's reason code when refused or flagged
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    decided_at: datetime | None = None

    def outbound_payload(self) -> dict[str, object]:
        """What the connector needs to create the appointment in the PIMS."""
        return {
            "booking_id": str(self.id),
            "patient_id": self.patient_id,
            "slot_id": self.slot.slot_id,
            "starts_at": self.slot.starts_at.isoformat(),
            "duration_minutes": self.slot.duration_minutes,
            "appointment_type": self.slot.appointment_type,
            "provider": self.slot.provider,
            "note": self.note,
        }


def clean_note(note: str | None) -> str | None:
    note = note.strip() if note else None
    if note and len(note) > MAX_NOTE:
        raise InvalidBooking("note", f"a note is at most {MAX_NOTE} characters")
    return note or None


def check_bookable(booking_mode: str | None) -> None:
    if booking_mode != "direct":
        raise BookingNotOffered("clinic_id", NOT_OFFERED)
