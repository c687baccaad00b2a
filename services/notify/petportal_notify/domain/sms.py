"""Texts to clinic numbers, as kept for staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class InboundText:
    """A text to a clinic's number as kept for staff (texts from unknown numbers are never dropped)."""

    id: int
    from_number: str
    body: str
    keyword: str | None
    matched_clients: int
    received_at: datetime
