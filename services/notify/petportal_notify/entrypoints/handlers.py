"""Event handlers: each calls its use case on a new unit of work (the claim is in its transaction)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from petportal_runtime.broker import PermanentEventError
from petportal_schemas import ClientErasureRequested, ClientUpserted, ClinicRegistered, Envelope

from ..domain.clinics import SmsNumberTaken
from ..domain.stops import PhoneDigests
from ..service_layer import services
from ..service_layer.services import CONSUMER
from ..service_layer.unit_of_work import NotifyUnitOfWork

__all__ = ["CONSUMER", "applying", "erase_client", "record_contact", "register_clinic"]

E = TypeVar("E")
UnitsOfWork = Callable[[], NotifyUnitOfWork]


def applying(
    use_case: Callable[[NotifyUnitOfWork, Envelope, E], Awaitable[bool]],
) -> Callable[[UnitsOfWork, Envelope, E], Awaitable[None]]:
    """A handler running `use_case` on a new unit of work (it claims the event in its transaction)."""

    async def handle(unit_of_work: UnitsOfWork, envelope: Envelope, event: E) -> None:
        await use_case(unit_of_work(), envelope, event)

    return handle


async def register_clinic(
    unit_of_work: Callable[[], NotifyUnitOfWork], envelope: Envelope, event: ClinicRegistered
) -> None:
    """Remember the clinic's texting number, which identifies it on inbound SMS."""
    try:
        await services.register_clinic(unit_of_work(), envelope, event)
    except SmsNumberTaken as exc:
        raise PermanentEventError(str(exc)) from exc


async def record_contact(
    unit_of_work: Callable[[], NotifyUnitOfWork],
    envelope: Envelope,
    event: ClientUpserted,
    *,
    phones: PhoneDigests,
) -> None:
    """Keep the client's phone and email (only those) and give them a consent record."""
    if envelope.client_id is None:  # pragma: no cover - the envelope rules forbid it
        raise PermanentEventError("ClientUpserted without client_id")
    await services.record_contact(unit_of_work(), envelope, event, phones=phones)


async def erase_client(
    unit_of_work: Callable[[], NotifyUnitOfWork],
    envelope: Envelope,
    event: ClientErasureRequested,
    *,
    phones: PhoneDigests,
) -> None:
    """Erase what notify holds about the client and confirm (ClientDataErased on the erasure topic)."""
    if envelope.client_id is None:  # pragma: no cover - the envelope rules forbid it
        raise PermanentEventError("ClientErasureRequested without client_id")
    await services.erase_client(unit_of_work(), envelope, event, phones=phones)
