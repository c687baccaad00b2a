"""Online booking and the parent's answers to appointments, version 1.

Published by `sync` (which keeps the PIMS's free slots and the outbound queue its connectors pull) on
the sync topic, keyed `clinic_id:client_id`. A booking is only an appointment once the PIMS took it:
`AppointmentBooked` follows the connector's acknowledgement, `AppointmentBookingRejected` its refusal.
No free text travels here (the parent's note goes to the PIMS through the outbound queue only).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from . import topics
from .envelope import Event, register
from .events import PimsId

# Why a connector refused an outbound item. The two "not matched" reasons flag it for staff: the PIMS
# could not tell which client or pet it is about, and must never create one silently.
NackReason = Literal[
    "slot_unavailable", "client_not_matched", "patient_not_matched", "invalid", "pims_error", "other"
]
AppointmentAnswer = Literal["confirm", "cancel"]


@register
class AppointmentBooked(Event):
    """The PIMS took a booking the parent made online: the appointment exists there now."""

    EVENT_TYPE = "AppointmentBooked"
    VERSION = 1
    TOPIC = topics.SYNC

    booking_id: uuid.UUID
    slot_id: PimsId
    patient_id: PimsId
    starts_at: AwareDatetime
    duration_minutes: int = Field(ge=1, le=24 * 60)
    timezone: str = Field(default="UTC", max_length=64)
    appointment_type: str | None = Field(default=None, max_length=100)
    booked_at: datetime


@register
class AppointmentBookingRejected(Event):
    """The PIMS refused a booking (or staff dismissed it): the slot is free again, the parent is told."""

    EVENT_TYPE = "AppointmentBookingRejected"
    VERSION = 1
    TOPIC = topics.SYNC

    booking_id: uuid.UUID
    patient_id: PimsId
    starts_at: AwareDatetime
    timezone: str = Field(default="UTC", max_length=64)
    reason: NackReason
    rejected_at: datetime


@register
class AppointmentAnswered(Event):
    """The parent confirmed an appointment or asked to cancel it (the PIMS is told through the outbound
    queue; the appointment itself changes when the PIMS says so)."""

    EVENT_TYPE = "AppointmentAnswered"
    VERSION = 1
    TOPIC = topics.SYNC

    appointment_id: PimsId
    patient_id: PimsId | None = None
    answer: AppointmentAnswer
    answered_at: datetime


PUBLISHED_BY_SYNC: tuple[type[Event], ...] = (
    AppointmentBooked,
    AppointmentBookingRejected,
    AppointmentAnswered,
)
