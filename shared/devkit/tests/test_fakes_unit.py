"""The in-memory unit of work keeps what a committed block did and drops what a failed one did."""

import uuid
from datetime import UTC, datetime

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_runtime.uow import UnitOfWork
from petportal_schemas import Envelope, MessageReceived

pytestmark = pytest.mark.unit


def _message() -> Envelope:
    event = MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=datetime.now(UTC))
    return Envelope.wrap(event, clinic_id="clinic-1", client_id="C-1", producer="test")


async def _publish_and_claim(uow: UnitOfWork[object], envelope: Envelope) -> bool:
    async with uow:
        await uow.publish(envelope)
        return await uow.claim("consumer", envelope)


async def test_a_committed_block_keeps_its_events_and_claims() -> None:
    uow = FakeUnitOfWork(object())
    envelope = _message()
    assert await _publish_and_claim(uow, envelope)
    assert not await _publish_and_claim(uow, envelope)
    assert uow.published == [envelope, envelope]
    assert uow.claimed == {("consumer", envelope.event_id)}
    assert (uow.commits, uow.rollbacks) == (2, 0)


async def test_a_block_that_raises_keeps_nothing_and_counts_a_rollback() -> None:
    uow = FakeUnitOfWork(object())
    envelope = _message()

    async def fail() -> None:
        async with uow:
            await uow.publish(envelope)
            await uow.claim("consumer", envelope)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await fail()
    assert (uow.published, uow.claimed, uow.commits, uow.rollbacks) == ([], set(), 0, 1)


async def test_repositories_are_reachable_only_inside_the_block() -> None:
    repositories = object()
    uow = FakeUnitOfWork(repositories)
    with pytest.raises(RuntimeError):
        _ = uow.repositories
    async with uow:
        assert uow.repositories is repositories
