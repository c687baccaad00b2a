"""Event handlers: each calls its use case on a new unit of work."""

from __future__ import annotations

from collections.abc import Callable

from petportal_runtime.broker import PermanentEventError
from petportal_schemas import ClientErasureRequested, ClientUpserted, Envelope, SmsReceived

from ..service_layer import services
from ..service_layer.services import CONSUMER
from ..service_layer.unit_of_work import MessagingUnitOfWork

__all__ = ["CONSUMER", "erase_client", "receive_client_text", "record_client"]


async def record_client(
    unit_of_work: Callable[[], MessagingUnitOfWork], envelope: Envelope, event: ClientUpserted
) -> None:
    await services.record_client(unit_of_work(), envelope)


async def receive_client_text(
    unit_of_work: Callable[[], MessagingUnitOfWork], envelope: Envelope, event: SmsReceived
) -> None:
    await services.receive_client_text(unit_of_work(), envelope, event)


async def erase_client(
    unit_of_work: Callable[[], MessagingUnitOfWork], envelope: Envelope, event: ClientErasureRequested
) -> None:
    if envelope.client_id is None:
        raise PermanentEventError(f"{event.EVENT_TYPE} without client_id")
    await services.erase_client(unit_of_work(), envelope, event)
