"""Use cases: apply a batch of events to the read model; read a parent's To-Do list.

The consumer and the `rebuild` command both go through `apply_batch`, so there is one projection path.
Only the consumer confirms erasures (docs/erasure.md): todo has no outbox, so it publishes each
`ClientDataErased` after the batch's write, every time the batch is applied (see `apply_batch`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

from petportal_runtime.erasure import confirmation
from petportal_runtime.uow import meanwhile
from petportal_schemas import Envelope, Event

from ..domain import (
    ClinicView,
    HelpOptions,
    ParentView,
    ProjectionChanges,
    TodoList,
    erasure_requests,
    help_options,
    parent_id,
    project,
    todo_list,
    unique_events,
)

SERVICE = "todo"

# Publishes events and returns once the broker has acknowledged every one of them (raises otherwise).
Publish = Callable[[Sequence[Envelope]], Awaitable[None]]


class ProjectionUnitOfWork(Protocol):
    """The write of one batch: `write` applies all of it atomically or none of it."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def already_applied(self, event_ids: Sequence[str]) -> set[str]:
        """Those of `event_ids` recorded in the inbox (read when a write found some there)."""
        ...

    async def tombstones(self, parent_ids: Collection[str]) -> dict[str, datetime]:
        """The erasure times of those of these parents who were erased (the latest erasure of each)."""
        ...

    async def write(self, changes: ProjectionChanges, applied_at: datetime) -> None:
        """Record the events in the inbox and apply the coalesced changes, in one transaction.

        Fails (changing nothing) if one of the events is recorded already: the records are the claim.
        """
        ...


class ReadModel(Protocol):
    # Batches with an erasure this process has written (counted by `apply_batch`): a batch whose
    # tombstones were read before the previous batch's write reads them again if it erased someone.
    erasures_written: int

    def unit_of_work(self) -> ProjectionUnitOfWork: ...

    async def views(self, clinic_id: str, client_id: str) -> tuple[ParentView | None, ClinicView | None]: ...


async def apply_batch(
    read_model: ReadModel,
    batch: Sequence[tuple[Envelope, Event]],
    now: datetime | None = None,
    *,
    publish: Publish | None = None,
    after: Awaitable[None] | None = None,
) -> ProjectionChanges:
    """Apply the events of `batch` not applied before, atomically; returns what was applied.

    `after`: awaited before the write (the previous batch's write, which the consumer runs behind
    it). The batch is folded and its tombstones read meanwhile; they are read again if the previous
    batch erased anyone (one partition's events are all applied by one consumer, so an erasure that
    concerns this batch is this process's own).

    Then, with `publish`, confirm every erasure request of the batch, those applied before included:
    a batch whose write committed but whose confirmations were not acknowledged fails here, is
    delivered again, and its confirmations are published then (at least once). Without `publish`
    (`rebuild`) nothing is confirmed.
    """
    if not batch:
        return ProjectionChanges()
    keys = [str(envelope.event_id) for envelope, _ in batch]
    parents = sorted({parent_id(e.clinic_id, e.client_id) for e, _ in batch if e.client_id is not None})
    applied_at = now or datetime.now(UTC)
    async with read_model.unit_of_work() as uow:
        # The inbox is not read first: its records, written with the changes, are the claim, and
        # usually no event of a batch was applied before. That case is projected while the store
        # looks up the tombstones.
        erasures_written = read_model.erasures_written
        erased, changes = await meanwhile(
            uow.tombstones(parents) if parents else _none(),
            lambda: project(unique_events(batch, set(), keys)),
        )
        if after is not None:
            await after
            if parents and read_model.erasures_written != erasures_written:
                erased = await uow.tombstones(parents)
        if erased:
            changes = project(unique_events(batch, set(), keys), erased)
        try:
            if changes.events:
                await uow.write(changes, applied_at)
        except Exception:
            # Some events are in the inbox already (a redelivery): their claim failed the write,
            # which changed nothing, and the rest is written now.
            if not (seen := await uow.already_applied(keys)):
                raise
            changes = project(unique_events(batch, seen, keys), erased)
            if changes.events:
                await uow.write(changes, applied_at)
    if any(change.erased_at is not None for change in changes.parents.values()):
        read_model.erasures_written += 1
    if publish is not None and (requests := erasure_requests(batch)):
        await publish([confirmation(envelope, event, SERVICE) for envelope, event in requests])
    return changes


async def _none() -> dict[str, datetime]:
    return {}


async def parent_todo_list(read_model: ReadModel, clinic_id: str, client_id: str) -> TodoList:
    return (await parent_todo(read_model, clinic_id, client_id))[0]


async def parent_todo(read_model: ReadModel, clinic_id: str, client_id: str) -> tuple[TodoList, HelpOptions]:
    """The parent's To-Do list and what Get Help Now may offer them, from the same one read."""
    parent, clinic = await read_model.views(clinic_id, client_id)
    return todo_list(parent, clinic), help_options(parent, clinic)


class ResettableReadModel(ReadModel, Protocol):
    async def drop(self) -> None:
        """Remove every document of the projection, inbox included; the erasures' tombstones stay (a
        replay must not bring an erased parent back)."""
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

    The service must be stopped meanwhile, or its consumer would race the rebuild. The tombstones are
    kept, so the events of an erased parent from before their erasure stay ignored. A rebuild
    confirms no erasure: it is an offline command, and each request was confirmed by the consumer
    when it was first applied (a request whose confirmation was lost is sent again by identity,
    until every service has confirmed it).
    """
    await read_model.drop()
    await read_model.ensure_indexes()
    applied = 0
    async for batch in source.batches():
        applied += len((await apply_batch(read_model, batch, publish=None)).events)
    await source.commit_group_offsets()
    return applied
