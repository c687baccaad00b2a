"""get-or-open against a fake repository, including losing the race for the active conversation."""

from __future__ import annotations

import pytest

from petportal_messaging.domain.model import Conversation
from petportal_messaging.service_layer.services import get_or_open_conversation

pytestmark = pytest.mark.unit


class FakeRepository:
    def __init__(self, *, concurrent_winner: Conversation | None = None) -> None:
        self.active: dict[tuple[str, str], Conversation] = {}
        self.concurrent_winner = concurrent_winner
        self.inserts = 0

    async def active_conversation(self, clinic_id: str, client_id: str) -> Conversation | None:
        return self.active.get((clinic_id, client_id))

    async def add_conversation(self, conversation: Conversation) -> bool:
        self.inserts += 1
        key = (conversation.clinic_id, conversation.client_id)
        if self.concurrent_winner is not None:
            # Another transaction committed its conversation first: the unique index refuses ours.
            self.active[key] = self.concurrent_winner
            self.concurrent_winner = None
            return False
        if key in self.active:
            return False
        self.active[key] = conversation
        return True


async def test_opens_a_conversation_once_then_reuses_it() -> None:
    repo = FakeRepository()
    first = await get_or_open_conversation(repo, "c1", "k1")
    second = await get_or_open_conversation(repo, "c1", "k1")
    assert first.id == second.id
    assert repo.inserts == 1


async def test_losing_the_race_returns_the_winners_conversation() -> None:
    winner = Conversation(clinic_id="c1", client_id="k1")
    repo = FakeRepository(concurrent_winner=winner)
    got = await get_or_open_conversation(repo, "c1", "k1")
    assert got.id == winner.id


async def test_conversations_are_per_client() -> None:
    repo = FakeRepository()
    a = await get_or_open_conversation(repo, "c1", "k1")
    b = await get_or_open_conversation(repo, "c1", "k2")
    c = await get_or_open_conversation(repo, "c2", "k1")
    assert len({a.id, b.id, c.id}) == 3
