"""What parents ask the clinic through the portal, and the clinic's answers, version 1.

Published by `pets` on the pets topic, keyed `clinic_id:client_id`. `todo` shows an answer on the
parent's list until they have seen it; `notify` tells them (their preferences apply). No free text
travels here (the clinic's note stays in pets, shown to the parent there).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from . import topics
from .envelope import Event, register
from .events import PimsId

RequestKind = Literal["appointment", "refill"]


@register
class AppointmentRequested(Event):
    """The parent asked for a visit for one of their pets, at one of their preferred times (the
    reason, their own words, stays in pets: the clinic reads it in its console)."""

    EVENT_TYPE = "AppointmentRequested"
    VERSION = 1
    TOPIC = topics.PETS

    request_id: uuid.UUID
    patient_id: PimsId
    preferred_times: list[AwareDatetime] = Field(min_length=1, max_length=10)
    requested_at: datetime


@register
class AppointmentRequestAnswered(Event):
    """The clinic accepted (at `appointment_at`), declined, or proposed another time (`appointment_at`)."""

    EVENT_TYPE = "AppointmentRequestAnswered"
    VERSION = 1
    TOPIC = topics.PETS

    request_id: uuid.UUID
    patient_id: PimsId
    outcome: Literal["accepted", "declined", "proposed"]
    appointment_at: AwareDatetime | None = None
    answered_at: datetime


@register
class RefillRequested(Event):
    """The parent asked for a refill of one of their pet's current prescriptions."""

    EVENT_TYPE = "RefillRequested"
    VERSION = 1
    TOPIC = topics.PETS

    request_id: uuid.UUID
    patient_id: PimsId
    prescription_id: PimsId
    requested_at: datetime


@register
class RefillRequestDecided(Event):
    """The clinic approved or denied a refill request."""

    EVENT_TYPE = "RefillRequestDecided"
    VERSION = 1
    TOPIC = topics.PETS

    request_id: uuid.UUID
    patient_id: PimsId
    prescription_id: PimsId
    outcome: Literal["approved", "denied"]
    decided_at: datetime


@register
class RequestAnswerSeen(Event):
    """The parent has seen the clinic's answer to one of their requests: it leaves their To-Do list."""

    EVENT_TYPE = "RequestAnswerSeen"
    VERSION = 1
    TOPIC = topics.PETS

    request_id: uuid.UUID
    kind: RequestKind
    seen_at: datetime
