"""The SMS provider port: what sending a text needs, whatever the carrier gateway is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .consent import Consent


@dataclass(frozen=True)
class SmsRecipient:
    clinic_id: str
    client_id: str
    from_number: str | None  # the clinic's SMS number
    to_number: str | None  # the client's phone
    consent: Consent | None


class SmsProvider(Protocol):
    async def send(self, *, from_number: str, to_number: str, body: str) -> None: ...


@dataclass(frozen=True)
class InboundText:
    """A text to a clinic's number as kept for staff (texts from unknown numbers are never dropped)."""

    id: int
    from_number: str
    body: str
    keyword: str | None
    matched_clients: int
    received_at: datetime
