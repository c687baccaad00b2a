"""Fake upstream answers are checked against the owning service's committed OpenAPI snapshot."""

from __future__ import annotations

import json

import pytest

from petportal_devkit.contracts import ContractViolation, check_answer, is_checked, upstream_answer

pytestmark = pytest.mark.unit

TODO_ITEM = {"kind": "unread_messages", "title": "You have 1 unread message", "count": 1}


def test_an_answer_in_the_services_shape_passes_and_is_marked_checked() -> None:
    body = {
        "badge": 1,
        "items": [{**TODO_ITEM, "action": {"href": "/conversation"}}],
        "help": {"live_chat": False, "booking_mode": None},
    }
    response = upstream_answer("todo", "GET", "/api/v1/todo", json=body)
    assert (response.status_code, response.json()) == (200, body)
    assert is_checked(response)


@pytest.mark.parametrize(
    ("service", "path", "body", "where"),
    [
        # shapes the gateway's fakes used while the services sent others
        ("todo", "/api/v1/todo", {"badge": 1, "items": [{**TODO_ITEM, "action": "/c"}]}, "items/0/action"),
        ("pets", "/api/v1/pets", [{"patient_id": "p1", "name": "Rex"}], "(body)"),
        ("pets", "/api/v1/pets", {"pets": [{"patient_id": "p1", "name": "Rex"}]}, "pets/0"),
        ("pets", "/api/v1/pets/p-1", {}, "(body)"),
        ("messaging", "/api/v1/conversation", {"ok": True}, "(body)"),
    ],
)
def test_a_fake_that_drifted_from_the_contract_fails(
    service: str, path: str, body: object, where: str
) -> None:
    with pytest.raises(
        ContractViolation, match=f"{service}.*{where.replace('(', '[(]').replace(')', '[)]')}"
    ):
        upstream_answer(service, "GET", path, json=body)


def test_a_json_body_given_as_bytes_is_checked_too() -> None:
    with pytest.raises(ContractViolation):
        upstream_answer(
            "todo", "GET", "/api/v1/todo", content=json.dumps({"badge": -1, "items": []}).encode()
        )
    with pytest.raises(ContractViolation, match="not JSON"):
        upstream_answer("todo", "GET", "/api/v1/todo", content=b"not json")


def test_paths_methods_and_statuses_the_service_does_not_document_fail() -> None:
    with pytest.raises(ContractViolation, match="no path"):
        check_answer("pets", "GET", "/api/v1/pets/p-1/notes", 200, {})
    with pytest.raises(ContractViolation, match="no POST"):
        check_answer("pets", "POST", "/api/v1/pets", 200, {"pets": []})
    with pytest.raises(ContractViolation, match="no 404"):
        check_answer("todo", "GET", "/api/v1/todo", 404, {"detail": "x"})


def test_failures_and_answers_broken_on_purpose_are_not_checked() -> None:
    assert upstream_answer("todo", "GET", "/api/v1/todo", 503, json={"detail": "down"}).status_code == 503
    broken = upstream_answer("todo", "GET", "/api/v1/todo", json=["x"], off_contract="a broken todo")
    assert is_checked(broken)
    assert broken.json() == ["x"]


def test_path_parameters_match_one_segment() -> None:
    pet = {
        "patient_id": "p-1",
        "clinic_id": "clinic-1",
        "clinic_name": None,
        "name": "Rex",
        "species": "canine",
        **dict.fromkeys(("breed", "sex", "date_of_birth", "colour", "weight_kg", "microchip", "age")),
    }
    check_answer("pets", "GET", "/api/v1/pets/p-1", 200, pet)
    with pytest.raises(ContractViolation, match="no path"):
        check_answer("pets", "GET", "/api/v1/pets/p-1/x", 200, pet)
