"""A read model in memory with the same all-or-nothing batch semantics as MongoReadModel."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from petportal_todo.domain import ClinicView, ParentView, ProjectionChanges, parent_id


@dataclass
class FakeReadModel:
    parents: dict[str, ParentView] = field(default_factory=dict)
    clinics: dict[str, ClinicView] = field(default_factory=dict)
    inbox: set[str] = field(default_factory=set)
    # parent id → erasure time; like the `erased` collection, not part of what a rebuild drops
    erased: dict[str, datetime] = field(default_factory=dict)
    fail_next_write: bool = False
    erasures_written: int = 0

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    async def views(self, clinic_id: str, client_id: str) -> tuple[ParentView | None, ClinicView | None]:
        return self.parents.get(parent_id(clinic_id, client_id)), self.clinics.get(clinic_id)

    async def ping(self) -> None:
        pass

    async def drop(self) -> None:
        self.parents, self.clinics, self.inbox = {}, {}, set()

    async def ensure_indexes(self) -> None:
        pass


class FakeUnitOfWork:
    def __init__(self, model: FakeReadModel) -> None:
        self.model = model
        self.staged: ProjectionChanges | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None and self.staged is not None:
            m, c = self.model, self.staged
            for key, change in c.parents.items():
                if change.erased_at is not None:
                    m.erased[key] = max(change.erased_at, m.erased.get(key, change.erased_at))
                if change.deletes_document:
                    m.parents.pop(key, None)
                else:
                    m.parents[key] = change.applied_to(m.parents.get(key))
            for key, clinic in c.clinics.items():
                m.clinics[key] = clinic.applied_to(m.clinics.get(key))
            m.inbox |= {str(e.event_id) for e in c.events}

    async def already_applied(self, event_ids: Sequence[str]) -> set[str]:
        return self.model.inbox & set(event_ids)

    async def tombstones(self, parent_ids: Collection[str]) -> dict[str, datetime]:
        return {key: at for key, at in self.model.erased.items() if key in parent_ids}

    async def write(self, changes: ProjectionChanges, applied_at: datetime) -> None:
        if self.model.fail_next_write:
            self.model.fail_next_write = False
            raise ConnectionError("read model down")
        if claimed := self.model.inbox & {str(e.event_id) for e in changes.events}:
            raise KeyError(f"already in the inbox: {sorted(claimed)}")  # the store's duplicate key
        self.staged = changes
