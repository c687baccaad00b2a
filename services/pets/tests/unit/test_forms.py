"""Clinic forms: the JSON Schema built from a form's fields, answers checked against it field by field
(nothing stored on error), versions, assignments pinned to a version, one submission each, and what
is published (ids and the title, never the answers)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema.validators import Draft202012Validator

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_pets.domain import Pet
from petportal_pets.domain.forms import (
    AssignmentStatus,
    FieldType,
    FormConflict,
    FormDefinition,
    FormField,
    FormNotFound,
    InvalidForm,
    answer_problems,
    build_schema,
)
from petportal_pets.service_layer import forms
from petportal_runtime.auth import ClientRef
from petportal_schemas import FormAssigned, FormSubmitted

from .conftest import InMemoryRepositories

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)
FIELDS = (
    FormField("pet_weight", "Weight (kg)", FieldType.TEXT, required=True, max_length=10),
    FormField("diet", "Diet", FieldType.CHOICE, required=True, options=("dry", "wet")),
    FormField("last_meal", "Last meal", FieldType.DATE),
    FormField("notes", "Anything else?", FieldType.TEXT),
    FormField("consent", "I consent to the surgery", FieldType.SIGNATURE, required=True),
)
VALID: dict[str, Any] = {
    "pet_weight": "12.5",
    "diet": "dry",
    "last_meal": "2026-12-31",
    "consent": {"full_name": "  Robin Reyes ", "consent": True},
}


def definition(fields: tuple[FormField, ...] = FIELDS) -> FormDefinition:
    return FormDefinition.publish("c1", " Surgery consent ", "Before the operation", fields, NOW)


def problems(answers: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(InvalidForm) as refused:
        definition().check_answers(answers, NOW)
    return [(p.loc, p.type) for p in refused.value.problems]


def test_the_schema_is_draft_2020_12_built_from_the_fields() -> None:
    schema = definition().schema
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (schema["title"], schema["description"]) == ("Surgery consent", "Before the operation")
    assert schema["required"] == ["pet_weight", "diet", "consent"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["pet_weight"]["maxLength"] == 10
    assert props["notes"] == {"title": "Anything else?", "type": "string", "maxLength": 1000}
    assert props["diet"]["enum"] == ["dry", "wet"]
    assert props["last_meal"]["format"] == "date"
    assert props["consent"]["properties"]["consent"] == {"const": True}
    assert props["consent"]["required"] == ["full_name", "consent"]
    assert "description" not in build_schema("T", None, FIELDS)


def test_valid_answers_are_stored_with_the_signature_time_and_trimmed_signer() -> None:
    stored = definition().check_answers(VALID, NOW)
    assert stored["consent"] == {"full_name": "Robin Reyes", "consent": True, "signed_at": NOW.isoformat()}
    assert {k: stored[k] for k in ("pet_weight", "diet", "last_meal")} == {
        "pet_weight": "12.5",
        "diet": "dry",
        "last_meal": "2026-12-31",
    }
    # Optional fields may be left out.
    assert set(definition().check_answers({k: VALID[k] for k in ("pet_weight", "diet", "consent")}, NOW)) == {
        "pet_weight",
        "diet",
        "consent",
    }


def test_each_field_at_fault_is_named_once() -> None:
    assert problems({}) == [
        (("answers", "consent"), "missing"),
        (("answers", "diet"), "missing"),
        (("answers", "pet_weight"), "missing"),
    ]
    assert problems(
        {
            "pet_weight": "   ",
            "diet": "raw",
            "last_meal": "2026-02-30",
            "consent": {"full_name": "Robin", "consent": False},
            "surprise": 1,
        }
    ) == [
        (("answers", "consent", "consent"), "consent_required"),
        (("answers", "diet"), "enum"),
        (("answers", "last_meal"), "date_parsing"),
        (("answers", "pet_weight"), "missing"),
        (("answers", "surprise"), "extra_forbidden"),
    ]
    assert problems({**VALID, "pet_weight": "x" * 11, "consent": "Robin"}) == [
        (("answers", "consent"), "object_type"),
        (("answers", "pet_weight"), "string_too_long"),
    ]
    assert problems({**VALID, "consent": {"full_name": " ", "consent": True, "extra": 1}}) == [
        (("answers", "consent", "extra"), "extra_forbidden"),
        (("answers", "consent", "full_name"), "missing"),
    ]
    assert problems({**VALID, "consent": {"full_name": "Robin"}}) == [
        (("answers", "consent", "consent"), "missing")
    ]
    assert problems({**VALID, "pet_weight": 12}) == [(("answers", "pet_weight"), "string_type")]


def test_the_messages_never_repeat_the_value() -> None:
    found = answer_problems(definition().schema, {**VALID, "diet": "secret-diet", "pet_weight": "secret" * 3})
    assert found
    assert not any("secret" in p.msg for p in found)


def test_bad_field_lists_are_refused_naming_the_field() -> None:
    choice = FormField("diet", "Diet", FieldType.CHOICE)
    with pytest.raises(InvalidForm) as refused:
        FormDefinition.publish(
            "c1",
            "T",
            None,
            [
                choice,
                FormField("diet", "Again", FieldType.TEXT),
                FormField("when", "When", FieldType.DATE, options=("a",), max_length=3),
                FormField("pick", "Pick", FieldType.CHOICE, options=("a", "a")),
            ],
            NOW,
        )
    assert [p.loc for p in refused.value.problems] == [
        ("fields", 0, "options"),
        ("fields", 1, "name"),
        ("fields", 2, "options"),
        ("fields", 2, "max_length"),
        ("fields", 3, "options"),
    ]
    with pytest.raises(InvalidForm):
        FormDefinition.publish("c1", "T", None, [], NOW)


def test_a_changed_form_is_the_next_version_and_the_same_one_is_none() -> None:
    first = definition()
    assert first.revised("Surgery consent", "Before the operation", FIELDS, NOW) is None
    second = first.revised("Surgery consent", None, FIELDS, NOW + timedelta(days=1))
    assert second is not None
    assert (second.form_id, second.version, second.description) == (first.form_id, 2, None)
    assert "description" not in second.schema


# --- the use cases ------------------------------------------------------------------------------


async def setup(
    uow: FakeUnitOfWork[InMemoryRepositories], repositories: InMemoryRepositories
) -> FormDefinition:
    repositories.forms.clients.add(("c1", "k1"))
    repositories.forms.appointments[("c1", "k1", "a-1")] = "p-1"
    repositories.forms.appointments[("c1", "k1", "a-2")] = "p-2"
    for patient_id in ("p-1", "p-2"):
        await repositories.pets.upsert(
            Pet(
                clinic_id="c1",
                client_id="k1",
                patient_id=patient_id,
                name="Rex",
                species="Canine",
                updated_at=NOW,
            )
        )
    return await forms.publish_form(
        uow, "c1", title="Surgery consent", description=None, fields=list(FIELDS), at=NOW
    )


MINE = [ClientRef(clinic_id="c1", client_id="k1")]


async def test_an_assignment_pins_the_current_version_and_is_published(
    uow: FakeUnitOfWork[InMemoryRepositories], repositories: InMemoryRepositories
) -> None:
    form = await setup(uow, repositories)
    assignment = await forms.assign_form(
        uow, "c1", form.form_id, client_id="k1", patient_id=None, appointment_id="a-1", at=NOW
    )
    assert (assignment.version, assignment.patient_id, assignment.status) == (
        1,
        "p-1",
        AssignmentStatus.PENDING,
    )
    [envelope] = uow.published
    event = envelope.event()
    assert isinstance(event, FormAssigned)
    assert (envelope.key, event.assignment_id, event.title, event.version) == (
        "c1:k1",
        assignment.id,
        "Surgery consent",
        1,
    )
    # A new version afterwards: the assignment keeps version 1.
    revised, created = await forms.revise_form(
        uow, "c1", form.form_id, title="Surgery consent", description="v2", fields=list(FIELDS), at=NOW
    )
    assert (revised.version, created) == (2, True)
    assert (await forms.parent_form(uow, MINE, assignment.id)).definition.version == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_id": "nobody"}, "client_id"),
        ({"patient_id": "p-9"}, "patient_id"),
        ({"appointment_id": "a-9"}, "appointment_id"),
    ],
)
async def test_an_assignment_for_what_the_client_does_not_have_is_not_found(
    uow: FakeUnitOfWork[InMemoryRepositories],
    repositories: InMemoryRepositories,
    changes: dict[str, str],
    field: str,
) -> None:
    form = await setup(uow, repositories)
    values: dict[str, Any] = {"client_id": "k1", "patient_id": None, "appointment_id": None} | changes
    with pytest.raises(FormNotFound) as refused:
        await forms.assign_form(uow, "c1", form.form_id, at=NOW, **values)
    assert refused.value.field == field
    with pytest.raises(FormNotFound):  # another clinic's form
        await forms.assign_form(
            uow, "c2", form.form_id, client_id="k1", patient_id=None, appointment_id=None, at=NOW
        )
    with pytest.raises(InvalidForm) as mismatch:  # the appointment is another pet's
        await forms.assign_form(
            uow, "c1", form.form_id, client_id="k1", patient_id="p-1", appointment_id="a-2", at=NOW
        )
    assert mismatch.value.problems[0].loc == ("appointment_id",)
    assert uow.published == []
    assert repositories.forms.assignments == {}


async def test_a_submission_is_checked_stored_once_with_its_version_and_published_without_answers(
    uow: FakeUnitOfWork[InMemoryRepositories], repositories: InMemoryRepositories
) -> None:
    form = await setup(uow, repositories)
    assignment = await forms.assign_form(
        uow, "c1", form.form_id, client_id="k1", patient_id="p-2", appointment_id=None, at=NOW
    )
    uow.published.clear()

    with pytest.raises(InvalidForm) as refused:
        await forms.submit_form(uow, MINE, assignment.id, {**VALID, "diet": "raw"}, NOW)
    assert [p.loc for p in refused.value.problems] == [("answers", "diet")]
    assert repositories.forms.submissions == {}
    assert repositories.forms.assignments[assignment.id].status is AssignmentStatus.PENDING
    assert uow.published == []

    for someone_else in (
        [ClientRef(clinic_id="c1", client_id="k2")],
        [ClientRef(clinic_id="c2", client_id="k1")],
    ):
        with pytest.raises(FormNotFound):
            await forms.submit_form(uow, someone_else, assignment.id, VALID, NOW)
    with pytest.raises(FormNotFound):
        await forms.submit_form(uow, MINE, uuid.uuid4(), VALID, NOW)
    with pytest.raises(FormConflict):
        await forms.parent_completed_form(uow, MINE, assignment.id)

    later = NOW + timedelta(hours=1)
    submission = await forms.submit_form(uow, MINE, assignment.id, VALID, later)
    assert (submission.version, submission.patient_id, submission.answers["consent"]["signed_at"]) == (
        1,
        "p-2",
        later.isoformat(),
    )
    stored = repositories.forms.assignments[assignment.id]
    assert (stored.status, stored.submission_id, stored.completed_at) == (
        AssignmentStatus.COMPLETED,
        submission.id,
        later,
    )
    [envelope] = uow.published
    event = envelope.event()
    assert isinstance(event, FormSubmitted)
    assert (event.submission_id, event.assignment_id, event.version, event.patient_id) == (
        submission.id,
        assignment.id,
        1,
        "p-2",
    )
    assert "Robin" not in envelope.to_bytes().decode()
    assert "12.5" not in envelope.to_bytes().decode()

    with pytest.raises(FormConflict) as again:
        await forms.submit_form(uow, MINE, assignment.id, VALID, later)
    assert again.value.field == "assignment_id"
    assert len(repositories.forms.submissions) == 1

    completed = await forms.clinic_submission(uow, "c1", submission.id)
    assert (completed.definition.version, completed.pet and completed.pet.patient_id) == (1, "p-2")
    assert (await forms.parent_completed_form(uow, MINE, assignment.id)).submission.id == submission.id
    with pytest.raises(FormNotFound):
        await forms.clinic_submission(uow, "c2", submission.id)
    listed = await forms.clinic_assignments(uow, "c1", AssignmentStatus.COMPLETED)
    assert [a.id for a in listed] == [assignment.id]
    assert await forms.clinic_assignments(uow, "c1", AssignmentStatus.PENDING) == []
