import json
from datetime import date, timedelta
from typing import Any

import pytest

from petportal_runtime.text import value_problems
from petportal_schemas import (
    ClientEnrolledInProgram,
    ClientUpserted,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
)
from petportal_sync.domain.apikeys import generate_api_key, hash_api_key, looks_like_api_key
from petportal_sync.domain.batch import (
    BatchPlan,
    ClinicData,
    has_changed,
    plan_batch,
    plan_steps,
    program_events,
)
from petportal_sync.domain.records import (
    ContactRecord,
    PatientRecord,
    PimsRecord,
    Rejection,
    _plainly_acceptable,
    record_text,
    validate_record,
)

pytestmark = pytest.mark.unit


def contact(client_id: str = "c1", **extra: Any) -> dict[str, Any]:
    return {"kind": "contact", "client_id": client_id, "first_name": "Ann", "last_name": "Lee", **extra}


def patient(patient_id: str = "p1", client_id: str = "c1", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "patient",
        "client_id": client_id,
        "patient_id": patient_id,
        "name": "Rex",
        "species": "Canine",
        **extra,
    }


def program(code: str = "care-plan", offered: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "program",
        "program_code": code,
        "name": "Care plan",
        "call_to_action": "Join now",
        "offered": offered,
        **extra,
    }


def enrolment(client_id: str = "c1", code: str = "care-plan") -> dict[str, Any]:
    return {"kind": "enrolment", "client_id": client_id, "program_code": code}


def valid(*raws: dict[str, Any]) -> list[tuple[int, PimsRecord]]:
    out = []
    for index, raw in enumerate(raws):
        record = validate_record(raw, index)
        assert not isinstance(record, Rejection), record
        out.append((index, record))
    return out


def rejection(raw: dict[str, Any]) -> Rejection:
    outcome = validate_record(raw, 7)
    assert isinstance(outcome, Rejection)
    assert outcome.index == 7
    return outcome


# --- validation ------------------------------------------------------------------------------


def test_contact_is_normalised() -> None:
    record = validate_record(contact(first_name="  Ann ", email="Ann@Example.COM", phone="(415) 555-2671"), 0)
    assert isinstance(record, ContactRecord)
    assert record.first_name == "Ann"
    assert record.email == "Ann@example.com"
    assert record.phone == "+14155552671"


def test_phone_uses_the_default_region_or_the_batchs() -> None:
    """sync reads phones with the one rule (petportal_runtime.phone, tested there), in the region given."""
    uk = validate_record(contact(phone="020 7946 0958"), 0, phone_region="GB")
    assert isinstance(uk, ContactRecord)
    assert uk.phone == "+442079460958"
    assert isinstance(validate_record(contact(phone="020 7946 0958"), 0), Rejection)


@pytest.mark.parametrize("phone", ["12", "not a phone", "555-0000-99999999", "+1 999 999 9999"])
def test_bad_phone_is_rejected(phone: str) -> None:
    errors = rejection(contact(phone=phone)).errors
    assert [e.field for e in errors] == ["phone"]
    assert "phone" in errors[0].message


def test_bad_email_is_rejected() -> None:
    errors = rejection(contact(email="ann@")).errors
    assert [e.field for e in errors] == ["email"]
    assert "email" in errors[0].message


def test_blank_optional_values_are_missing_values() -> None:
    record = validate_record(contact(email="", phone="  "), 0)
    assert isinstance(record, ContactRecord)
    assert record.email is None
    assert record.phone is None


@pytest.mark.parametrize("raw", [{"kind": "invoice", "total": 3}, {"client_id": "c1"}, {"kind": 5}])
def test_unknown_or_missing_kind_is_rejected(raw: dict[str, Any]) -> None:
    errors = rejection(raw).errors
    assert [e.field for e in errors] == ["kind"]
    assert (
        "contact, contact_removed, patient, patient_removed, program, enrolment, appointment"
        in errors[0].message
    )


def test_every_bad_field_is_reported_with_its_name() -> None:
    bad = rejection(patient(weight_kg=-2, date_of_birth=str(date.today() + timedelta(days=3)), tattoo="x"))
    assert bad.kind == "patient"
    assert {e.field for e in bad.errors} == {"weight_kg", "date_of_birth", "tattoo"}
    missing = rejection({"kind": "contact", "client_id": "c1"})
    assert {e.field for e in missing.errors} == {"first_name", "last_name"}
    assert rejection(contact(client_id="has space")).errors[0].field == "client_id"
    assert rejection(program(code="Care Plan")).errors[0].field == "program_code"


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (contact(first_name="A\x00nn"), "first_name", "NUL (U+0000)"),
        (contact(last_name="\ud800"), "last_name", "a lone surrogate (U+D800)"),
        (contact(phone="415\x00555 2671"), "phone", "NUL"),  # a phone parser would skip the NUL
        (contact(last_name="\x1f"), "last_name", "a control character (U+001F)"),  # not a blank
        (patient(weight_kg=float("nan")), "weight_kg", "finite number"),
        (patient(weight_kg=float("inf")), "weight_kg", "finite number"),
        (patient(name=float("-inf")), "name", "finite number"),
        ({**patient(), "no\x00te": "x"}, "no\\u0000te", "NUL"),
    ],
)
def test_text_and_numbers_the_portal_refuses_reject_the_record_naming_the_field(
    raw: dict[str, Any], field: str, reason: str
) -> None:
    [error] = rejection(raw).errors
    assert error.field == field
    assert reason in error.message


@pytest.mark.parametrize(
    "raw",
    [
        contact(),
        contact(first_name="Zo\u00eb\tA\r\nB", email=None, version=3),
        patient(weight_kg=12.5, deceased=True),
        patient(weight_kg=float("nan")),
        {**patient(), "no\x00te": "x"},
        contact(last_name="\udfff"),
        {"kind": "clinic_settings", "appointment_visibility": {"show\x00": True}},
        {"kind": "clinic_settings", "appointment_visibility": {"provider": "\x1f"}},
        {"kind": "x", "nested": [[[["\x00"]]]]},
        {1: "a"},
        ["kind", "contact"],
        "contact",
        None,
    ],
)
def test_the_quick_check_of_plain_records_passes_only_records_with_nothing_refused(raw: Any) -> None:
    # Records that pass the one-scan check skip the walk that names each problem: it must find none.
    if _plainly_acceptable(raw):
        assert not list(value_problems(raw))
    else:
        assert raw not in (contact(), patient(weight_kg=12.5, deceased=True))


def test_a_refused_kind_is_kept_escaped() -> None:
    bad_kind = rejection({"kind": "con\x00tact\ud800", "x": 1})
    assert bad_kind.kind == "con\\u0000tact\\ud800"
    assert [e.field for e in bad_kind.errors] == ["kind"]


def test_a_record_is_kept_as_ascii_json_text_of_what_was_sent() -> None:
    raw = {"kind": "patient", "name": "Zo\u00eb\x00", "w": float("nan"), "x": "\udfff", "n": [1, None]}
    text = record_text(raw)
    assert text.isascii()
    assert "\x00" not in text
    assert text == '{"kind": "patient", "name": "Zo\\u00eb\\u0000", "w": NaN, "x": "\\udfff", "n": [1, null]}'
    assert json.dumps(json.loads(text), ensure_ascii=True) == text


def test_patient_fields_are_typed() -> None:
    record = validate_record(patient(date_of_birth="2019-04-01", weight_kg="12.5", breed=""), 0)
    assert isinstance(record, PatientRecord)
    assert record.date_of_birth == date(2019, 4, 1)
    assert record.weight_kg == 12.5
    assert record.breed is None


# --- change detection and batch planning -------------------------------------------------------


def test_has_changed() -> None:
    assert has_changed(None, {"a": 1})
    assert not has_changed({"a": 1, "b": None}, {"a": 1, "b": None})
    assert has_changed({"a": 1, "b": None}, {"a": 1, "b": 2})


def test_new_contact_is_published_and_an_identical_one_is_not() -> None:
    first = plan_batch(valid(contact(phone="4155552671")), ClinicData())
    assert first.accepted == 1
    assert [type(p.event) for p in first.events] == [ClientUpserted]
    assert first.events[0].client_id == "c1"
    assert first.contacts["c1"]["phone"] == "+14155552671"

    # The connector sends the same data again: accepted, nothing written, nothing published.
    again = plan_batch(valid(contact(phone="(415) 555-2671")), ClinicData(contacts=dict(first.contacts)))
    assert again.accepted == 1
    assert again.events == []
    assert again.contacts == {}

    changed = plan_batch(valid(contact(last_name="Lee-Smith")), ClinicData(contacts=dict(first.contacts)))
    assert [type(p.event) for p in changed.events] == [ClientUpserted]
    assert changed.contacts["c1"]["last_name"] == "Lee-Smith"


def test_a_plan_made_in_steps_is_the_plan_made_at_once() -> None:
    records = valid(
        patient(client_id="ghost"), patient(), contact(), contact("c2"), patient("p2", "c2"), contact("c3")
    )
    stepped = BatchPlan()
    steps = sum(1 for _ in plan_steps(records, ClinicData(), stepped, every=2))
    assert steps == 2  # a pause after every 2 of the 6 records, none after the last
    assert stepped == plan_batch(records, ClinicData())


def test_patient_needs_a_known_client() -> None:
    plan = plan_batch(valid(patient(client_id="ghost")), ClinicData())
    assert plan.accepted == 0
    [rej] = plan.rejections
    assert rej.kind == "patient"
    assert rej.errors[0].field == "client_id"
    assert "unknown client ghost" in rej.errors[0].message
    assert plan.events == []
    assert plan.patients == {}


def test_patient_may_come_before_its_contact_in_the_same_batch() -> None:
    plan = plan_batch(valid(patient(), contact()), ClinicData())
    assert plan.accepted == 2
    assert plan.rejections == []
    # The contact's event goes first so consumers know the client before the pet.
    assert [type(p.event) for p in plan.events] == [ClientUpserted, PatientUpserted]
    assert plan.events[1].client_id == "c1"


def test_patient_of_a_stored_client_and_change_detection() -> None:
    stored = ClinicData(contacts={"c1": {"first_name": "Ann"}})
    first = plan_batch(valid(patient(weight_kg=10)), stored)
    assert [type(p.event) for p in first.events] == [PatientUpserted]
    stored.patients = dict(first.patients)
    assert plan_batch(valid(patient(weight_kg=10.0)), stored).events == []
    assert len(plan_batch(valid(patient(weight_kg=11)), stored).events) == 1


def test_program_offer_and_withdrawal() -> None:
    offered = {"name": "Care plan", "call_to_action": "Join now", "offered": True}
    assert [type(e) for e in program_events("cp", None, offered)] == [ProgramOffered]
    assert program_events("cp", offered, offered) == []
    assert program_events("cp", None, {**offered, "offered": False}) == []  # never offered
    assert [type(e) for e in program_events("cp", offered, {**offered, "offered": False})] == [
        ProgramWithdrawn
    ]
    renamed = {**offered, "call_to_action": "Sign up"}
    [event] = program_events("cp", offered, renamed)
    assert isinstance(event, ProgramOffered)
    assert event.call_to_action == "Sign up"


def test_enrolment_needs_an_offered_program_and_a_known_client() -> None:
    plan = plan_batch(
        valid(contact(), enrolment(code="care-plan"), enrolment(client_id="ghost"), enrolment(code="gone")),
        ClinicData(programs={"gone": {"name": "Old", "call_to_action": "x", "offered": False}}),
    )
    assert plan.accepted == 1
    assert [(r.index, r.errors[0].field) for r in plan.rejections] == [
        (1, "program_code"),
        (2, "client_id"),
        (3, "program_code"),
    ]

    with_program = plan_batch(valid(contact(), program(), enrolment()), ClinicData())
    assert with_program.accepted == 3
    assert [type(p.event) for p in with_program.events] == [
        ClientUpserted,
        ProgramOffered,
        ClientEnrolledInProgram,
    ]
    assert with_program.enrolments == [("c1", "care-plan")]

    already = ClinicData(
        contacts={"c1": {}},
        programs={"care-plan": {"name": "Care plan", "call_to_action": "Join now", "offered": True}},
        enrolments={("c1", "care-plan")},
    )
    repeat = plan_batch(valid(enrolment()), already)
    assert repeat.accepted == 1
    assert repeat.events == []
    assert repeat.enrolments == []


def test_api_keys() -> None:
    key = generate_api_key()
    assert key.startswith("ppk_")
    assert looks_like_api_key(key)
    assert generate_api_key() != key
    assert hash_api_key(key) == hash_api_key(key)
    assert len(hash_api_key(key)) == 64
    assert key not in hash_api_key(key)
    assert not looks_like_api_key("Bearer something")
