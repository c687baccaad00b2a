"""A parent's request to erase their portal data, and how far it has got (docs/erasure.md).

One request covers every client the person is at (one per clinic); it is complete when every
service that holds client data has confirmed, for every one of those clients.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from petportal_runtime.auth import ClientRef

ErasureState = Literal["pending", "complete"]


@dataclass(frozen=True)
class Erasure:
    id: uuid.UUID
    requested_at: datetime
    # (clinic_id, client_id) -> service -> when it confirmed (None: not yet)
    confirmations: dict[tuple[str, str], dict[str, datetime | None]]
    completed_at: datetime | None = None

    @classmethod
    def new(
        cls,
        clients: list[ClientRef],
        services: tuple[str, ...],
        at: datetime,
        erasure_id: uuid.UUID | None = None,
    ) -> Erasure:
        if not clients:
            raise ValueError("an erasure needs at least one client")
        return cls(
            id=erasure_id or uuid.uuid4(),
            requested_at=at,
            confirmations={(c.clinic_id, c.client_id): dict.fromkeys(services) for c in clients},
        )

    @property
    def state(self) -> ErasureState:
        return "complete" if self.completed_at is not None else "pending"

    def waiting_for(self) -> list[str]:
        """The services that have not confirmed for every client yet, sorted."""
        return sorted(
            {s for by_service in self.confirmations.values() for s, at in by_service.items() if at is None}
        )


@dataclass(frozen=True)
class ErasureSubject:
    """One client of one erasure, as the clinic sees it (ids only)."""

    erasure_id: uuid.UUID
    client_id: str
    requested_at: datetime
    completed_at: datetime | None
    waiting_for: list[str] = field(default_factory=list)
