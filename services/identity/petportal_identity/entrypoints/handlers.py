"""Event handlers: each calls its use case on a new unit of work (the claim is in its transaction)."""

from __future__ import annotations

from collections.abc import Callable

from petportal_runtime.broker import PermanentEventError
from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    ClientRemoved,
    ClientUpserted,
    ClinicRegistered,
    Envelope,
    ReminderSent,
)

from ..domain.model import Contact
from ..service_layer import erasure, services
from ..service_layer.services import CONSUMER
from ..service_layer.unit_of_work import IdentityUnitOfWork

__all__ = [
    "CONSUMER",
    "erase_client",
    "forget_contact",
    "open_account_after_reminder",
    "record_clinic",
    "record_contact",
    "record_erasure_confirmation",
]

UnitsOfWork = Callable[[], IdentityUnitOfWork]


def _client_id(envelope: Envelope) -> str:
    if envelope.client_id is None:
        raise PermanentEventError(f"{envelope.event_type} without a client_id")
    return envelope.client_id


async def record_contact(unit_of_work: UnitsOfWork, envelope: Envelope, event: ClientUpserted) -> None:
    contact = Contact(
        clinic_id=envelope.clinic_id,
        client_id=_client_id(envelope),
        first_name=event.first_name,
        last_name=event.last_name,
        email=event.email,
        phone=event.phone,
    )
    await services.record_contact(unit_of_work(), envelope, contact)


async def open_account_after_reminder(
    unit_of_work: UnitsOfWork, envelope: Envelope, event: ReminderSent
) -> None:
    await services.open_account(unit_of_work(), envelope, _client_id(envelope), "reminder")


async def record_clinic(unit_of_work: UnitsOfWork, envelope: Envelope, event: ClinicRegistered) -> None:
    await services.record_clinic(unit_of_work(), envelope, event.name)


async def forget_contact(unit_of_work: UnitsOfWork, envelope: Envelope, event: ClientRemoved) -> None:
    """The PIMS no longer has the client: their identifier no longer signs in there, and their
    sessions lose that clinic at the next refresh (sessions with no clinic left end)."""
    await services.forget_contact(unit_of_work(), envelope, _client_id(envelope))


async def erase_client(unit_of_work: UnitsOfWork, envelope: Envelope, event: ClientErasureRequested) -> None:
    await erasure.erase_own_data(unit_of_work(), envelope, event)


async def record_erasure_confirmation(
    unit_of_work: UnitsOfWork, envelope: Envelope, event: ClientDataErased
) -> None:
    _client_id(envelope)
    await erasure.record_confirmation(unit_of_work(), envelope, event)
