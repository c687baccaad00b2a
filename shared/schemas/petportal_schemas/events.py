"""Domain events, version 1. Past-tense names; one model per (type, version).

A change that old consumers cannot read gets a new VERSION and an upcaster from the previous one
(see `envelope.upcaster`), so events already on the log keep reading.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field

from . import topics
from .envelope import ID_PATTERN, Event, register
from .pims import PimsName

PimsId = Annotated[str, Field(pattern=ID_PATTERN)]
ProgramCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
E164 = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$")]
ConsentSource = Literal["sms_keyword", "portal", "staff"]


# --- messaging -------------------------------------------------------------------------------


@register
class MessageReceived(Event):
    """Clinic staff sent a message to the client: one more unread message for the parent."""

    EVENT_TYPE = "MessageReceived"
    VERSION = 1
    TOPIC = topics.MESSAGING

    conversation_id: uuid.UUID
    message_id: uuid.UUID
    sent_at: datetime


@register
class MessageRead(Event):
    """The parent read these messages (each id once: the sender never re-reads a read message)."""

    EVENT_TYPE = "MessageRead"
    VERSION = 1
    TOPIC = topics.MESSAGING

    conversation_id: uuid.UUID
    message_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)
    read_at: datetime


@register
class ClientMessageSent(Event):
    """The client wrote to the clinic in the portal: one more unread message for the clinic's staff.

    Never unread for the client themself, so the To-Do list does not consume it."""

    EVENT_TYPE = "ClientMessageSent"
    VERSION = 1
    TOPIC = topics.MESSAGING

    conversation_id: uuid.UUID
    message_id: uuid.UUID
    sent_at: datetime


# --- notify ----------------------------------------------------------------------------------


@register
class SmsOptedOut(Event):
    """The client opted out of text messages (keyword such as STOP, or in the portal)."""

    EVENT_TYPE = "SmsOptedOut"
    VERSION = 1
    TOPIC = topics.NOTIFY

    source: ConsentSource
    keyword: str | None = Field(default=None, max_length=20)


@register
class SmsOptedIn(Event):
    """The client opted back in to text messages (START / UNSTOP, or in the portal)."""

    EVENT_TYPE = "SmsOptedIn"
    VERSION = 1
    TOPIC = topics.NOTIFY

    source: ConsentSource
    keyword: str | None = Field(default=None, max_length=20)


@register
class ReminderSent(Event):
    """A service or appointment reminder went out to the client."""

    EVENT_TYPE = "ReminderSent"
    VERSION = 1
    TOPIC = topics.NOTIFY

    reminder_id: PimsId
    channel: Literal["sms", "email"]
    kind: Literal["service", "appointment"]
    patient_id: PimsId | None = None


# --- sync (PIMS) -----------------------------------------------------------------------------


@register
class ClinicRegistered(Event):
    """A clinic was set up (or its settings changed)."""

    EVENT_TYPE = "ClinicRegistered"
    VERSION = 1
    TOPIC = topics.SYNC
    CLINIC_WIDE = True

    name: str = Field(min_length=1, max_length=200)
    pims: PimsName
    sms_number: E164 | None = None
    timezone: str = Field(default="UTC", max_length=64)


@register
class ClientUpserted(Event):
    """A client's contact record as the PIMS holds it now."""

    EVENT_TYPE = "ClientUpserted"
    VERSION = 1
    TOPIC = topics.SYNC

    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=254)
    phone: E164 | None = None


@register
class PatientUpserted(Event):
    """A pet's signalment as the PIMS holds it now."""

    EVENT_TYPE = "PatientUpserted"
    VERSION = 1
    TOPIC = topics.SYNC

    patient_id: PimsId
    name: str = Field(min_length=1, max_length=100)
    species: str = Field(min_length=1, max_length=50)
    breed: str | None = Field(default=None, max_length=100)
    sex: str | None = Field(default=None, max_length=30)
    date_of_birth: date | None = None
    colour: str | None = Field(default=None, max_length=50)
    weight_kg: float | None = Field(default=None, gt=0, lt=2000)
    microchip: str | None = Field(default=None, max_length=30)


@register
class ProgramOffered(Event):
    """The clinic offers a program (for example a Care plan) to its clients."""

    EVENT_TYPE = "ProgramOffered"
    VERSION = 1
    TOPIC = topics.SYNC
    CLINIC_WIDE = True

    program_code: ProgramCode
    name: str = Field(min_length=1, max_length=100)
    call_to_action: str = Field(min_length=1, max_length=100)


@register
class ProgramWithdrawn(Event):
    """The clinic no longer offers the program."""

    EVENT_TYPE = "ProgramWithdrawn"
    VERSION = 1
    TOPIC = topics.SYNC
    CLINIC_WIDE = True

    program_code: ProgramCode


@register
class ClientEnrolledInProgram(Event):
    """The client joined a program the clinic offers."""

    EVENT_TYPE = "ClientEnrolledInProgram"
    VERSION = 1
    TOPIC = topics.SYNC

    program_code: ProgramCode
