"""Permanent erasure of a client's portal data, version 1 (docs/erasure.md).

`identity` asks every service that holds client data to erase it; each confirms with
`ClientDataErased` on the erasure topic, and the request is complete when all have. Neither event
carries personal data: the key (`clinic_id:client_id`) and the erasure's id are all there is.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from . import topics
from .envelope import Event, register

ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


@register
class ClientErasureRequested(Event):
    """Erase everything the portal holds for this client (the PIMS record is untouched). Sent again
    until every service has confirmed; erasing twice is the same as erasing once. Events about the
    client that occurred before this one are ignored from then on, replays included."""

    EVENT_TYPE = "ClientErasureRequested"
    VERSION = 1
    TOPIC = topics.IDENTITY

    erasure_id: uuid.UUID


@register
class ClientDataErased(Event):
    """`service` has erased what it held for the client under `erasure_id`."""

    EVENT_TYPE = "ClientDataErased"
    VERSION = 1
    TOPIC = topics.ERASURE

    erasure_id: uuid.UUID
    service: ServiceName


def erasure_guarded(envelope_event_type: str) -> bool:
    """Whether an event about an erased client is refused when it is older than the erasure. Every
    event is, but the confirmations: they are about the erasure itself, stamped by other services'
    clocks, and carry nothing to erase."""
    return envelope_event_type != ClientDataErased.EVENT_TYPE
