"""Feedback about the portal: a parent rates it (with a few words if they like), their clinic reads
it newest first, nobody else does; a handful a day per parent, counted in the database every replica
shares; bad input is a 4xx with the field."""

from __future__ import annotations

import pytest

from .conftest import Messaging

pytestmark = pytest.mark.integration


async def test_a_parent_rates_the_portal_and_the_clinic_reads_it(messaging: Messaging) -> None:
    m = messaging
    given = await m.http.post(
        "/api/v1/feedback", json={"rating": 4, "text": " Easy to book! "}, headers=m.parent("k1")
    )
    assert given.status_code == 201, given.text
    assert (given.json()["rating"], given.json()["text"]) == (4, "Easy to book!")
    await m.http.post("/api/v1/feedback", json={"rating": 2}, headers=m.parent("k2"))
    read = (await m.http.get("/clinic/v1/feedback", headers=m.staff())).json()
    assert [(f["client_id"], f["rating"], f["text"]) for f in read["feedback"]] == [
        ("k2", 2, None),
        ("k1", 4, "Easy to book!"),
    ]
    other = (await m.http.get("/clinic/v1/feedback", headers=m.staff("another-clinic"))).json()
    assert other["feedback"] == []
    assert (await m.http.get("/clinic/v1/feedback", headers=m.parent("k1"))).status_code == 403


async def test_feedback_is_limited_per_parent(messaging: Messaging) -> None:
    m = messaging
    answers = [
        (await m.http.post("/api/v1/feedback", json={"rating": 5}, headers=m.parent("k9"))).status_code
        for _ in range(6)
    ]
    assert answers == [201] * 5 + [429]
    # Another parent is not held back by that one.
    assert (
        await m.http.post("/api/v1/feedback", json={"rating": 5}, headers=m.parent("k8"))
    ).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"rating": 0},
        {"rating": 6},
        {"rating": "5"},
        {"rating": 3, "text": "a\x00b"},
        {"rating": 3, "text": "x" * 2001},
        {},
    ],
)
async def test_bad_feedback_is_refused(messaging: Messaging, body: dict[str, object]) -> None:
    m = messaging
    response = await m.http.post("/api/v1/feedback", json=body, headers=m.parent("k1"))
    assert response.status_code == 422, response.text
