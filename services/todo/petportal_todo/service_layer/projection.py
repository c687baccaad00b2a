"""Use cases: apply a batch of events to the read model; read a parent's To-Do list.

The consumer and the `rebuild` command both go through `apply_batch`, so there is one projection path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

from petportal_schemas import Envelope, Event

from ..domain import ClinicView, ParentView, ProjectionChanges, TodoList, project, todo_list, unique_events


class ProjectionUnitOfWork(Protocol):
    """The write of one batch: `write` applies all of it atomically or none of it."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def already_applied(self, event_ids: Sequence[str]) -> set[str]:
        """Those of `event_ids` recorded in the inbox."""
        ...

    async def write(self, changes: ProjectionChanges, applied_at: datetime) -> None:
        """Record the events in the inbox and apply the coalesced changes, in one transaction.

        Fails (changing nothing) if one of the events was recorded meanwhile.
        """
        ...


class ReadModel(Protocol):
    def unit_of_work(self) -> ProjectionUnitOfWork: ...

    async def views(self, clinic_id: str, client_id: str) -> tuple[ParentView | None, ClinicView | None]: ...


async def apply_batch(
    read_model: ReadModel, batch: Sequence[tuple[Envelope, Event]], now: datetime | None = None
) -> ProjectionChanges:
    """Apply the events of `batch` not applied before, atomically; returns what was applied."""
    if not batch:
        return ProjectionChanges()
    async with read_model.unit_of_work() as uow:
        seen = await uow.already_applied([str(envelope.event_id) for envelope, _ in batch])
        changes = project(unique_events(batch, seen))
        if changes.events:
            await uow.write(changes, now or datetime.now(UTC))
    return changes


async def parent_todo_list(read_model: ReadModel, clinic_id: str, client_id: str) -> TodoList:
    parent, clinic = await read_model.views(clinic_id, client_id)
    return todo_list(parent, clinic)


class ResettableReadModel(ReadModel, Protocol):
    async def drop(self) -> None:
        """Remove every document of the projection, inbox included."""
        ...

    async def ensure_indexes(self) -> None: ...


class EventSource(Protocol):
    def batches(self) -> AsyncIterator[list[tuple[Envelope, Event]]]:
        """Every event on the source topics from the beginning up to their ends now."""
        ...

    async def commit_group_offsets(self) -> None:
        """Make the service's consumer group resume where `batches` stopped."""
        ...


async def rebuild(read_model: ResettableReadModel, source: EventSource) -> int:
    """Drop the projection and re-apply every event; the number of events applied.

    The service must be stopped meanwhile, or its consumer would race the rebuild.
    """
    await read_model.drop()
    await read_model.ensure_indexes()
    applied = 0
    async for batch in source.batches():
        applied += len((await apply_batch(read_model, batch)).events)
    await source.commit_group_offsets()
    return applied
