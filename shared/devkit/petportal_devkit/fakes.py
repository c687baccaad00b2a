"""A unit of work in memory, for use-case and consumer unit tests (`petportal_runtime.uow.UnitOfWork`).

Each service's tests give it their own in-memory repositories. It records what the use case
committed: the published envelopes and inbox claims of each block that ended without an error
(those of a block that raised are dropped, as a rollback drops them), and how many blocks committed
or rolled back. The repositories themselves do not roll back: a test of a failing use case looks at
`rollbacks` and at what was published, not at the repositories.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Generic, Self, TypeVar

from petportal_schemas import Envelope, erasure_guarded, partition_key

R = TypeVar("R")


class FakeUnitOfWork(Generic[R]):
    def __init__(self, repositories: R) -> None:
        self._repositories = repositories
        self.published: list[Envelope] = []
        self.claimed: set[tuple[str, uuid.UUID]] = set()
        self.commits = 0
        self.rollbacks = 0
        self._open = False
        self._staged: list[Envelope] = []
        self._claims: set[tuple[str, uuid.UUID]] = set()
        # (clinic_id, client_id) -> erased_at, as the erased_clients table (committed on exit: tests set it)
        self.erased: dict[tuple[str, str], datetime] = {}
        self._erased: dict[tuple[str, str], datetime] = {}

    @property
    def repositories(self) -> R:
        if not self._open:
            raise RuntimeError("the unit of work is not open")
        return self._repositories

    async def __aenter__(self) -> Self:
        if self._open:
            raise RuntimeError("the unit of work is already open")
        self._open = True
        self._staged, self._claims, self._erased = [], set(), {}
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False
        if exc_type is None:
            self.published.extend(self._staged)
            self.claimed |= self._claims
            self.erased.update(self._erased)
            self.commits += 1
        else:
            self.rollbacks += 1
        self._staged, self._claims = [], set()

    async def publish(self, envelope: Envelope) -> None:
        if not self._open:
            raise RuntimeError("the unit of work is not open")
        self._staged.append(envelope)

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            await self.publish(envelope)

    async def claim(self, consumer: str, envelope: Envelope) -> bool:
        if not self._open:
            raise RuntimeError("the unit of work is not open")
        key = (consumer, envelope.event_id)
        if key in self.claimed or key in self._claims:
            return False
        if envelope.client_id is not None and erasure_guarded(envelope.event_type):
            erased_at = {**self.erased, **self._erased}.get((envelope.clinic_id, envelope.client_id))
            if erased_at is not None and envelope.occurred_at <= erased_at:
                return False
        self._claims.add(key)
        return True

    async def forget_client(
        self, clinic_id: str, client_id: str, erased_at: datetime, erasure_id: uuid.UUID
    ) -> None:
        if not self._open:
            raise RuntimeError("the unit of work is not open")
        key = (clinic_id, client_id)
        self._erased[key] = max(erased_at, self.erased.get(key, erased_at))
        key_text = partition_key(clinic_id, client_id)
        self.published = [e for e in self.published if e.key != key_text]
        self._staged = [e for e in self._staged if e.key != key_text]

    def published_types(self) -> list[str]:
        return [envelope.event_type for envelope in self.published]
