"""The unit of work: one transaction on the service's database, with its repositories, the outbox and
the inbox. Use cases depend on `UnitOfWork` (the protocol); the service layer never sees a session.

    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return
        await uow.repositories.pets.upsert(pet)
        await uow.publish(Envelope.wrap(...))

The block commits when it ends and rolls back if it raises; staged events are relayed as soon as it
commits. A unit of work may be entered again after it ends (a new transaction each time).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

from petportal_schemas import Envelope, erasure_guarded

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from .db import SessionFactory
    from .outbox import OutboxRelay

R = TypeVar("R")
T = TypeVar("T")
W = TypeVar("W")
R_co = TypeVar("R_co", covariant=True)


class UnitOfWork(Protocol[R_co]):
    """What a use case needs of a transaction; `repositories` are the service's own."""

    @property
    def repositories(self) -> R_co: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def publish(self, envelope: Envelope) -> None:
        """Stage the event in the outbox; it is published only if this unit of work commits."""
        ...

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None:
        """`publish` for many events at once (one statement on PostgreSQL: sync's batches)."""
        ...

    async def claim(self, consumer: str, envelope: Envelope) -> bool:
        """True if `consumer` has not applied this event yet and it is not about an erased client
        from before the erasure; the claim commits with the effect."""
        ...

    async def forget_client(
        self, clinic_id: str, client_id: str, erased_at: datetime, erasure_id: uuid.UUID
    ) -> None:
        """Record that the client's data was erased at `erased_at` (older events about them are
        refused from now on) and drop the outbox rows that carry their data."""
        ...


class SqlUnitOfWork(Generic[R]):
    """`UnitOfWork` on the service's PostgreSQL database; `repositories` builds the service's
    repositories on the transaction's session."""

    def __init__(
        self,
        sessions: SessionFactory,
        repositories: Callable[[AsyncSession], R],
        *,
        relay: OutboxRelay | None = None,
    ) -> None:
        self._sessions = sessions
        self._make_repositories = repositories
        self._relay = relay
        self._stack: AsyncExitStack | None = None
        self._session: AsyncSession | None = None
        self._repositories: R | None = None
        self._staged_events = False

    @property
    def session(self) -> AsyncSession:
        """For adapters and runtime pieces only (the rate limiter, tests); use cases go through the
        repositories."""
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    @property
    def repositories(self) -> R:
        if self._repositories is None:
            raise RuntimeError("the unit of work is not open")
        return self._repositories

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("the unit of work is already open")
        stack = AsyncExitStack()
        self._staged_events = False
        session = await stack.enter_async_context(self._sessions())
        await stack.enter_async_context(session.begin())
        self._stack, self._session = stack, session
        self._repositories = self._make_repositories(session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        self._session = self._repositories = None
        if stack is None:  # pragma: no cover - entered twice
            return
        # Commits (the session's `begin()` block) unless the body raised; a failed commit raises here.
        await stack.__aexit__(exc_type, exc, tb)
        # Only a commit that added events wakes the relay: a read costs it nothing.
        if exc_type is None and self._staged_events and self._relay is not None:
            self._relay.wake()

    async def publish(self, envelope: Envelope) -> None:
        from .outbox import add_event

        await add_event(self.session, envelope)
        self._staged_events = True

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None:
        from .outbox import add_events

        await add_events(self.session, envelopes)
        self._staged_events = self._staged_events or bool(envelopes)

    async def claim(self, consumer: str, envelope: Envelope) -> bool:
        from .inbox import claim

        subject = (
            (envelope.clinic_id, envelope.client_id, envelope.occurred_at)
            if envelope.client_id is not None and erasure_guarded(envelope.event_type)
            else None
        )
        return await claim(self.session, consumer, envelope.event_id, envelope.event_type, subject)

    async def forget_client(
        self, clinic_id: str, client_id: str, erased_at: datetime, erasure_id: uuid.UUID
    ) -> None:
        from .inbox import forget_client

        await forget_client(self.session, clinic_id, client_id, erased_at, erasure_id)


async def meanwhile(operation: Awaitable[T], work: Callable[[], W]) -> tuple[T, W]:
    """Send `operation` to the store, do `work` (CPU only) while the store answers, then wait for the
    answer: the two overlap instead of adding up. If `work` fails, `operation` is cancelled: nothing
    is left running on the unit of work, which the failure rolls back."""
    task = asyncio.ensure_future(operation)
    try:
        await asyncio.sleep(0)  # the task runs until it waits for the reply: the request is out
        done = work()
        return await task, done
    finally:
        task.cancel()  # done already, unless `work` failed
