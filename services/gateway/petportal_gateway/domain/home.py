"""The home screen's model: what the gateway reads from todo and pets, and the answer it composes.

The upstream models mirror the owning services' answers (`GET /api/v1/todo`, and pets' `GET
/api/v1/pets-overview`: its `GET /api/v1/pets` and `GET /api/v1/appointments` in one answer; as in
their OpenAPI snapshots under tests/contract/snapshots/openapi/). They ignore fields they do not
know, so a service may add one without breaking the home screen; a missing or mistyped field makes
that part unusable (todo: 503; pets: null).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

# --- read from todo ---------------------------------------------------------------------------------


class TodoAction(BaseModel):
    href: str


class TodoItem(BaseModel):
    kind: Literal[
        "unread_messages",
        "request_answered",
        "refill_decided",
        "form_pending",
        "appointment_to_confirm",
        "overdue_services",
        "sms_opt_in",
        "program_cta",
    ]
    title: str
    # Left out of the answer when absent, as todo does.
    count: int | None = Field(
        default=None, ge=0, description="only on unread_messages", exclude_if=lambda v: v is None
    )
    action: TodoAction


class TodoList(BaseModel):
    badge: int = Field(ge=0, description="the number of items")
    items: list[TodoItem]


class TodoHelp(BaseModel):
    live_chat: bool = False
    booking_mode: Literal["none", "request", "direct"] | None = None


class TodoAnswer(TodoList):
    """todo's whole answer: the list, and what Get Help Now may offer (read in the same request)."""

    help: TodoHelp = Field(default_factory=TodoHelp)


# --- read from pets ---------------------------------------------------------------------------------


class PetAge(BaseModel):
    years: int = Field(ge=0)
    months: int = Field(ge=0, le=11)
    text: str


class Pet(BaseModel):
    patient_id: str
    clinic_id: str
    clinic_name: str | None
    name: str
    species: str
    breed: str | None
    sex: str | None
    date_of_birth: date | None
    colour: str | None
    weight_kg: float | None
    microchip: str | None
    age: PetAge | None = Field(description="null when the date of birth is unknown")


# --- the composed answer ----------------------------------------------------------------------------


class HelpOption(BaseModel):
    kind: Literal["talk_to_staff", "live_chat", "book_appointment"]
    href: str


class UpcomingAppointment(BaseModel):
    """One of pets' `GET /api/v1/appointments` (the clinics' visibility rules already applied)."""

    appointment_id: str
    patient_id: str | None
    pet_name: str | None = None
    clinic_id: str
    starts_at: datetime = Field(description="UTC")
    # Passed on as pets wrote it (the clinic's offset kept as written).
    local_start: str = Field(description="in the clinic's timezone, with its offset")
    timezone: str
    duration_minutes: int
    appointment_type: str | None
    reason: str | None
    provider: str | None
    status: str


class PetsOverview(BaseModel):
    """pets' `GET /api/v1/pets-overview`: the parent's pets and upcoming appointments, read together."""

    pets: list[Pet]
    appointments: list[UpcomingAppointment]


class HomeScreen(BaseModel):
    todo: TodoList
    pets: list[Pet] | None = Field(description="null when the pets service could not answer in time")
    upcoming_appointments: list[UpcomingAppointment] | None = Field(
        description="every pet's, at every clinic, soonest first; null when pets could not answer in time"
    )
    get_help: list[HelpOption]


def get_help(help: TodoHelp) -> list[HelpOption]:
    """Talk to staff always; Care Plan live chat for a member at a clinic with chat on (in the same
    conversation, answered as a chat); booking unless the clinic turned it off: the booking screen at a
    clinic that takes direct bookings, else a request from the pet's page (a clinic that never sent
    its settings gets requests)."""
    options = [HelpOption(kind="talk_to_staff", href="/conversation")]
    if help.live_chat:
        options.append(HelpOption(kind="live_chat", href="/conversation"))
    if help.booking_mode != "none":
        href = "/book" if help.booking_mode == "direct" else "/pets"
        options.append(HelpOption(kind="book_appointment", href=href))
    return options
