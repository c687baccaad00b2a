"""The one way a service with a database erases a client (docs/erasure.md).

    async def erase_client(uow, envelope, event: ClientErasureRequested) -> None:
        await erase(uow, "pets", envelope, event, lambda: uow.repositories.pets.erase_client(...))

In one transaction: the claim, the service's own deletions, the tombstone (older events about the
client are refused from now on), the deletion of the outbox rows keyed to the client, and the
confirmation. A request sent again is applied again: erasing twice is erasing once, and identity
keeps asking until every service has confirmed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from petportal_schemas import ClientDataErased, ClientErasureRequested, Envelope

from .logging import get_logger
from .uow import UnitOfWork

log = get_logger(__name__)


def confirmation(envelope: Envelope, event: ClientErasureRequested, service: str) -> Envelope:
    """`service`'s ClientDataErased for the request in `envelope`."""
    if envelope.client_id is None:
        raise ValueError("ClientErasureRequested without client_id")
    return Envelope.wrap(
        ClientDataErased(erasure_id=event.erasure_id, service=service),
        clinic_id=envelope.clinic_id,
        client_id=envelope.client_id,
        producer=service,
        trace=envelope.trace,
    )


async def erase(
    uow: UnitOfWork[Any],
    service: str,
    envelope: Envelope,
    event: ClientErasureRequested,
    delete_data: Callable[[str, str], Awaitable[int]],
) -> bool:
    """Erase the client of `envelope` with `delete_data(clinic_id, client_id)` (how many rows it
    deleted) and confirm; False if this request was applied before."""
    if envelope.client_id is None:
        raise ValueError("ClientErasureRequested without client_id")
    clinic_id, client_id = envelope.clinic_id, envelope.client_id
    async with uow:
        if not await uow.claim(service, envelope):
            return False
        deleted = await delete_data(clinic_id, client_id)
        await uow.forget_client(clinic_id, client_id, envelope.occurred_at, event.erasure_id)
        await uow.publish(confirmation(envelope, event, service))
    log.info("client data erased", erasure_id=str(event.erasure_id), rows=deleted)
    return True
