"""The unit of work on a real PostgreSQL: the effect, the outbox row and the inbox claim commit or
roll back together."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime import tables
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_runtime.tables import metadata
from petportal_schemas import Envelope, MessageReceived

pytestmark = pytest.mark.integration


def _message() -> Envelope:
    event = MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=datetime.now(UTC))
    return Envelope.wrap(event, clinic_id="uow-clinic", client_id="C-1", producer="runtime-test")


@pytest.fixture
async def runtime(make_database) -> AsyncIterator[ServiceRuntime]:  # type: ignore[no-untyped-def]
    url = make_database()
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    runtime = ServiceRuntime(ServiceSettings(service_name="uow-test", database_url=url), broker=False)
    yield runtime
    if runtime.engine is not None:
        await runtime.engine.dispose()


async def _counts(runtime: ServiceRuntime) -> tuple[int, int]:
    async with runtime.transaction() as session:
        outbox_rows = (await session.execute(select(func.count()).select_from(tables.outbox))).scalar_one()
        inbox_rows = (await session.execute(select(func.count()).select_from(tables.inbox))).scalar_one()
    return outbox_rows, inbox_rows


def _sessions(session: AsyncSession) -> AsyncSession:
    return session


async def test_a_committed_unit_of_work_keeps_its_event_and_its_claim(runtime: ServiceRuntime) -> None:
    envelope = _message()
    async with runtime.unit_of_work(_sessions) as uow:
        assert await uow.claim("uow-test", envelope)
        await uow.publish(_message())
    async with runtime.unit_of_work(_sessions) as uow:
        assert not await uow.claim("uow-test", envelope)
    assert await _counts(runtime) == (1, 1)


async def test_a_unit_of_work_that_raises_keeps_neither_event_nor_claim(runtime: ServiceRuntime) -> None:
    envelope = _message()

    async def fail() -> None:
        async with runtime.unit_of_work(_sessions) as uow:
            assert await uow.claim("uow-test", envelope)
            await uow.publish(_message())
            raise RuntimeError("effect failed")

    with pytest.raises(RuntimeError, match="effect failed"):
        await fail()
    assert await _counts(runtime) == (0, 0)
    async with runtime.unit_of_work(_sessions) as uow:
        assert await uow.claim("uow-test", envelope)


async def test_many_events_are_staged_in_order_and_roll_back_with_the_transaction(
    runtime: ServiceRuntime,
) -> None:
    from sqlalchemy import text

    from petportal_runtime.outbox import add_events

    many = [_message() for _ in range(250)]  # enough for the bulk path (COPY)
    async with runtime.transaction() as session:
        await session.execute(text("SELECT 1"))
        await add_events(session, many[:120])
    async with runtime.transaction() as session:
        await add_events(session, many[120:])  # the transaction's first statement: no COPY

    async def fail_after_staging() -> None:
        async with runtime.transaction() as session:
            await session.execute(text("SELECT 1"))
            await add_events(session, [_message() for _ in range(120)])
            raise RuntimeError("effect failed")

    with pytest.raises(RuntimeError, match="effect failed"):
        await fail_after_staging()
    async with runtime.transaction() as session:
        rows = (
            await session.execute(
                select(tables.outbox.c.event_id, tables.outbox.c.value).order_by(tables.outbox.c.id)
            )
        ).all()
    assert [row.event_id for row in rows] == [e.event_id for e in many]
    assert [Envelope.from_bytes(row.value) for row in rows] == many


async def test_only_a_commit_that_added_events_wakes_the_relay(make_database) -> None:  # type: ignore[no-untyped-def]
    from petportal_runtime.uow import SqlUnitOfWork

    url = make_database()
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    woken: list[bool] = []

    class Relay:
        def wake(self) -> None:
            woken.append(True)

    from sqlalchemy.ext.asyncio import async_sessionmaker

    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    uow = SqlUnitOfWork(sessions, _sessions, relay=Relay())  # type: ignore[arg-type]
    try:
        async with uow:
            await uow.claim("uow-test", _message())  # a read-and-claim, no event
        assert woken == []
        async with uow:
            await uow.publish_all([])
        assert woken == []
        async with uow:
            await uow.publish(_message())
        assert woken == [True]
    finally:
        await engine.dispose()


async def test_the_repositories_share_the_unit_of_works_session(runtime: ServiceRuntime) -> None:
    uow = runtime.unit_of_work(_sessions)
    async with uow:
        assert uow.repositories is uow.session


def _about(client_id: str, occurred_at: datetime) -> Envelope:
    event = MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=occurred_at)
    return Envelope.wrap(
        event, clinic_id="uow-clinic", client_id=client_id, producer="runtime-test", occurred_at=occurred_at
    )


async def test_an_erased_clients_older_events_are_refused_and_their_outbox_rows_dropped(
    runtime: ServiceRuntime,
) -> None:
    from datetime import timedelta

    from petportal_runtime.erasure import erase
    from petportal_schemas import ClientDataErased, ClientErasureRequested

    before = datetime.now(UTC) - timedelta(minutes=5)
    async with runtime.unit_of_work(_sessions) as uow:
        await uow.publish(_about("C-1", before))
        await uow.publish(_about("C-2", before))
    first = ClientErasureRequested(erasure_id=uuid.uuid4())
    request = Envelope.wrap(
        first,
        clinic_id="uow-clinic",
        client_id="C-1",
        producer="identity",
    )
    deleted: list[tuple[str, str]] = []

    async def delete_data(clinic_id: str, client_id: str) -> int:
        deleted.append((clinic_id, client_id))
        return 3

    assert await erase(runtime.unit_of_work(_sessions), "uow-test", request, first, delete_data)
    assert not await erase(runtime.unit_of_work(_sessions), "uow-test", request, first, delete_data)
    assert deleted == [("uow-clinic", "C-1")]
    async with runtime.transaction() as session:
        rows = (await session.execute(select(tables.outbox.c.key, tables.outbox.c.event_type))).all()
    # C-1's event is gone, C-2's stays, and the confirmation was staged after the deletion.
    assert sorted(rows) == [("uow-clinic:C-1", "ClientDataErased"), ("uow-clinic:C-2", "MessageReceived")]

    async with runtime.unit_of_work(_sessions) as uow:
        assert not await uow.claim("uow-test", _about("C-1", before))  # older: refused, whatever its id
        assert await uow.claim("uow-test", _about("C-2", before))  # another client
        assert await uow.claim("uow-test", _about("C-1", datetime.now(UTC) + timedelta(seconds=1)))  # newer
        confirmation = Envelope.wrap(
            ClientDataErased(erasure_id=uuid.uuid4(), service="pets"),
            clinic_id="uow-clinic",
            client_id="C-1",
            producer="pets",
            occurred_at=before,  # a slow clock: still recorded
        )
        assert await uow.claim("uow-test", confirmation)
    # A later request for the same client (identity asking again) is applied again.
    second = ClientErasureRequested(erasure_id=uuid.uuid4())
    again = Envelope.wrap(
        second,
        clinic_id="uow-clinic",
        client_id="C-1",
        producer="identity",
    )
    assert await erase(runtime.unit_of_work(_sessions), "uow-test", again, second, delete_data)
    async with runtime.transaction() as session:
        [(erased_at,)] = (await session.execute(select(tables.erased_clients.c.erased_at))).all()
    assert erased_at == again.occurred_at


async def test_an_erasure_waits_for_an_event_of_its_client_being_applied(runtime: ServiceRuntime) -> None:
    """The event claimed before the tombstone commits its row after the erasure started: the erasure
    waits for it and deletes that row too (without the client's lock, the row would survive)."""
    import asyncio

    from petportal_runtime.erasure import erase
    from petportal_schemas import ClientErasureRequested

    applying = runtime.unit_of_work(_sessions)
    await applying.__aenter__()
    assert await applying.claim("uow-test", _about("C-3", datetime.now(UTC)))
    await applying.publish(_about("C-3", datetime.now(UTC)))  # the event's effect, keyed to C-3

    event = ClientErasureRequested(erasure_id=uuid.uuid4())
    request = Envelope.wrap(event, clinic_id="uow-clinic", client_id="C-3", producer="identity")

    async def nothing(clinic_id: str, client_id: str) -> int:
        return 0

    erasing = asyncio.create_task(erase(runtime.unit_of_work(_sessions), "uow-test", request, event, nothing))
    done, _ = await asyncio.wait({erasing}, timeout=0.5)
    assert not done, "the erasure must wait for the event being applied"
    await applying.__aexit__(None, None, None)
    assert await erasing
    async with runtime.transaction() as session:
        rows = (
            await session.execute(
                select(tables.outbox.c.event_type).where(tables.outbox.c.key == "uow-clinic:C-3")
            )
        ).all()
    assert rows == [("ClientDataErased",)]
