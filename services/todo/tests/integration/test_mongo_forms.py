"""The clinic's forms in the MongoDB read model on the real server: assignments and completions round
trip in either order, twice, and leave with the client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from petportal_schemas import ClientRemoved, Envelope, Event, FormAssigned, FormSubmitted
from petportal_todo.adapters.mongo import EPOCH, MongoReadModel, make_client, parent_updates
from petportal_todo.domain import project, todo_list
from petportal_todo.service_layer.projection import apply_batch

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
FORM = uuid.uuid4()


@pytest.fixture
async def read_model(mongo_url: str) -> AsyncIterator[MongoReadModel]:
    model = MongoReadModel(make_client(mongo_url), f"todo_forms_{uuid.uuid4().hex[:10]}")
    await model.ensure_indexes()
    yield model
    await model.client.drop_database(model.db.name)
    await model.close()


def env(event: Event, at: datetime = T0) -> tuple[Envelope, Event]:
    return Envelope.wrap(event, clinic_id="c1", client_id="p1", producer="test", occurred_at=at), event


def assigned(assignment: uuid.UUID, title: str = "Surgery consent") -> tuple[Envelope, Event]:
    return env(FormAssigned(assignment_id=assignment, form_id=FORM, version=2, title=title, assigned_at=T0))


def submitted(assignment: uuid.UUID) -> tuple[Envelope, Event]:
    at = T0 + timedelta(hours=1)
    return env(
        FormSubmitted(
            assignment_id=assignment, submission_id=uuid.uuid4(), form_id=FORM, version=2, submitted_at=at
        ),
        at,
    )


async def test_forms_and_their_completion_round_trip_in_any_order_and_twice(
    read_model: MongoReadModel,
) -> None:
    async def listed() -> list[tuple[str, str, str]]:
        parent, clinic = await read_model.views("c1", "p1")
        return [(i.kind, i.title, i.href) for i in todo_list(parent, clinic).items]

    done_first, pending, later = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # The first write of the document is a completion (an upsert that inserts): a nested field.
    await apply_batch(read_model, [submitted(done_first)])
    doc = await read_model.db["parents"].find_one({"_id": "c1:p1"})
    assert doc is not None
    assert doc["completed_forms"] == {
        str(done_first): (T0 + timedelta(hours=1) - EPOCH) // timedelta(microseconds=1)
    }
    await apply_batch(read_model, [assigned(done_first), assigned(pending, "Intake")])
    assert await listed() == [("form_pending", "Please fill in: Intake", f"/forms/{pending}")]
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert {(f.assignment_id, f.assigned_at) for f in parent.assigned_forms} == {
        (str(done_first), T0),
        (str(pending), T0),
    }

    # Idempotent writes: the same change applied twice leaves the same document.
    change = project([submitted(pending), assigned(later)]).parents["c1:p1"]
    await read_model.db["parents"].bulk_write(parent_updates(change, T0))
    once = await read_model.db["parents"].find_one({"_id": "c1:p1"})
    await read_model.db["parents"].bulk_write(parent_updates(change, T0))
    assert await read_model.db["parents"].find_one({"_id": "c1:p1"}) == once
    assert await listed() == [("form_pending", "Please fill in: Surgery consent", f"/forms/{later}")]

    # The client leaves the PIMS: their forms go; the completions stay.
    await apply_batch(read_model, [env(ClientRemoved(reason="deleted_in_pims"), T0 + timedelta(days=1))])
    assert await listed() == []
    parent, _ = await read_model.views("c1", "p1")
    assert parent is not None
    assert parent.completed_form_ids == {str(done_first), str(pending)}
