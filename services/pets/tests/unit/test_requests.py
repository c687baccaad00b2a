"""Appointment requests: what a parent may ask, and how the clinic answers once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from petportal_pets.domain.requests import AppointmentRequest, Decision, InvalidRequest, RequestStatus

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)
LATER = NOW + timedelta(days=2)


def new(**changes: object) -> AppointmentRequest:
    args: dict[str, object] = {"reason": "Limping", "preferred": [LATER]} | changes
    return AppointmentRequest.new("c1", "k1", "p1", args["reason"], args["preferred"], NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"reason": "  "},
        {"reason": "x" * 501},
        {"preferred": []},
        {"preferred": [LATER + timedelta(hours=h) for h in range(4)]},
        {"preferred": [NOW - timedelta(minutes=1)]},
        {"preferred": [datetime(2027, 2, 1, 10)]},  # no timezone
    ],
)
def test_what_a_parent_may_not_ask(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        new(**changes)


def test_preferred_times_are_kept_in_order_once() -> None:
    request = new(preferred=[LATER + timedelta(hours=2), LATER, LATER])
    assert request.preferred_times == [LATER, LATER + timedelta(hours=2)]


@pytest.mark.parametrize(
    ("decision", "time", "status"),
    [
        (Decision.ACCEPT, LATER, RequestStatus.ACCEPTED),
        (Decision.PROPOSE, LATER, RequestStatus.PROPOSED),
        (Decision.DECLINE, None, RequestStatus.DECLINED),
    ],
)
def test_the_clinic_answers_once(decision: Decision, time: datetime | None, status: RequestStatus) -> None:
    request = new()
    request.answer(decision, time, " ok ", NOW)
    assert (request.status, request.answer_time, request.note, request.answered_at) == (
        status,
        time,
        "ok",
        NOW,
    )
    with pytest.raises(InvalidRequest):
        request.answer(Decision.DECLINE, None, None, NOW)
    with pytest.raises(InvalidRequest):
        request.cancel()


@pytest.mark.parametrize(
    ("decision", "time"), [(Decision.ACCEPT, None), (Decision.PROPOSE, NOW), (Decision.DECLINE, LATER)]
)
def test_an_answer_needs_the_right_time(decision: Decision, time: datetime | None) -> None:
    with pytest.raises(InvalidRequest):
        new().answer(decision, time, None, NOW)


def test_a_pending_request_can_be_cancelled() -> None:
    request = new()
    request.cancel()
    assert request.status is RequestStatus.CANCELLED


def test_an_answer_is_seen_once_and_only_once_there_is_one() -> None:
    request = new()
    with pytest.raises(InvalidRequest, match="not answered"):
        request.see(NOW)
    request.answer(Decision.DECLINE, None, None, NOW)
    assert request.see(NOW + timedelta(minutes=5))
    assert not request.see(NOW + timedelta(minutes=9))
    assert request.seen_at == NOW + timedelta(minutes=5)
    cancelled = new()
    cancelled.cancel()
    with pytest.raises(InvalidRequest):
        cancelled.see(NOW)
