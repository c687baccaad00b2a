"""Clinic forms against a real PostgreSQL and Kafka broker, through the real ASGI app: published,
versioned, assigned (checked against the client's pets and appointments), filled in once (answers
checked field by field, nothing stored on error), delivered to the clinic as JSON and PDF, published
without the answers, and erased with the client."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import text

from petportal_devkit.testing import read_events
from petportal_devkit.tokens import TokenMinter
from petportal_schemas import (
    AppointmentUpserted,
    ClientErasureRequested,
    FormAssigned,
    FormSubmitted,
    topics,
)

from .test_pets import _outbox, eventually, patient, pets, producer, signing_key

pytestmark = pytest.mark.integration

__all__ = ["pets", "producer", "signing_key"]  # the fixtures, shared with test_pets

FORM: dict[str, Any] = {
    "title": "Surgery consent",
    "description": "Please fill this in before Rex's operation.",
    "fields": [
        {"name": "pet_weight", "label": "Weight (kg)", "type": "text", "required": True, "max_length": 10},
        {"name": "diet", "label": "Diet", "type": "choice", "required": True, "options": ["dry", "wet"]},
        {"name": "last_meal", "label": "Last meal", "type": "date"},
        {"name": "consent", "label": "I consent to the surgery", "type": "signature", "required": True},
    ],
}
ANSWERS: dict[str, Any] = {
    "pet_weight": "12.5",
    "diet": "dry",
    "last_meal": "2027-01-02",
    "consent": {"full_name": "Robin Reyes", "consent": True},
}


async def _count(runtime: Any, sql: str, **params: Any) -> int:
    async with runtime.transaction() as session:
        return int((await session.execute(text(sql), params)).scalar_one())


async def _known(http: httpx.AsyncClient, auth: dict[str, str], patient_id: str) -> None:
    await eventually(
        lambda: http.get(f"/api/v1/pets/{patient_id}", headers=auth), lambda r: r.status_code == 200
    )


async def test_a_form_is_published_assigned_filled_in_once_and_delivered_to_the_clinic(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter, kafka_bootstrap: str
) -> None:
    http, runtime = pets
    tag = uuid.uuid4().hex[:6]
    clinic_id, client_id, other = f"clinic-f-{tag}", f"client-{tag}", f"other-{tag}"
    await producer(patient("p-1", "Rex"), clinic_id, client_id)
    await producer(patient("p-2", "Bella"), clinic_id, client_id)
    await producer(patient("p-9", "Secretpet"), clinic_id, other)
    await producer(
        AppointmentUpserted(
            appointment_id="a-1", patient_id="p-1", starts_at=datetime.now(UTC) + timedelta(days=3)
        ),
        clinic_id,
        client_id,
    )
    mine = signing_key.parent_headers(clinic_id, client_id)
    theirs = signing_key.parent_headers(clinic_id, other)
    staff = signing_key.staff_headers(clinic_id)
    elsewhere = signing_key.staff_headers(f"another-{tag}")
    await _known(http, mine, "p-2")
    await _known(http, theirs, "p-9")
    await eventually(
        lambda: _count(runtime, "SELECT count(*) FROM pet_records WHERE clinic_id = :c", c=clinic_id),
        lambda n: n == 1,
    )

    # A definition that breaks the rules: 422 naming each field, nothing published.
    bad_fields = [
        {"name": "diet", "label": "Diet", "type": "choice"},
        {"name": "diet", "label": "Again", "type": "text"},
        {"name": "Bad Name", "label": "x", "type": "text"},
    ]
    refused = await http.post(
        "/clinic/v1/forms", json={"title": "T", "fields": bad_fields[:2]}, headers=staff
    )
    assert refused.status_code == 422, refused.text
    assert [e["loc"] for e in refused.json()["detail"]] == [
        ["body", "fields", 0, "options"],
        ["body", "fields", 1, "name"],
    ]
    malformed = await http.post(
        "/clinic/v1/forms", json={"title": "T", "fields": bad_fields[2:]}, headers=staff
    )
    assert [e["loc"] for e in malformed.json()["detail"]] == [["body", "fields", 0, "name"]]
    assert (await http.post("/clinic/v1/forms", json=FORM, headers=mine)).status_code == 403
    assert (await http.get("/clinic/v1/forms", headers=staff)).json() == {"forms": []}

    published = await http.post("/clinic/v1/forms", json=FORM, headers=staff)
    assert published.status_code == 201, published.text
    form = published.json()
    form_id = form["form_id"]
    assert (form["version"], form["title"], [f["name"] for f in form["fields"]]) == (
        1,
        "Surgery consent",
        ["pet_weight", "diet", "last_meal", "consent"],
    )
    assert form["json_schema"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert form["json_schema"]["required"] == ["pet_weight", "diet", "consent"]
    assert [f["form_id"] for f in (await http.get("/clinic/v1/forms", headers=staff)).json()["forms"]] == [
        form_id
    ]
    assert (await http.get("/clinic/v1/forms", headers=elsewhere)).json() == {"forms": []}
    assert (await http.get(f"/clinic/v1/forms/{form_id}", headers=elsewhere)).status_code == 404

    # Assigning: the client, pet and appointment must be theirs at the clinic.
    assign_url = f"/clinic/v1/forms/{form_id}/assignments"
    for body, status, field in (
        ({"client_id": "nobody"}, 404, "client_id"),
        ({"client_id": client_id, "patient_id": "p-9"}, 404, "patient_id"),
        ({"client_id": client_id, "appointment_id": "a-9"}, 404, "appointment_id"),
    ):
        response = await http.post(assign_url, json=body, headers=staff)
        assert (response.status_code, response.json()["field"]) == (status, field), response.text
    mismatch = await http.post(
        assign_url, json={"client_id": client_id, "patient_id": "p-2", "appointment_id": "a-1"}, headers=staff
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["detail"][0]["loc"] == ["body", "appointment_id"]
    unknown_form = await http.post(
        f"/clinic/v1/forms/{uuid.uuid4()}/assignments", json={"client_id": client_id}, headers=staff
    )
    assert (unknown_form.status_code, unknown_form.json()["field"]) == (404, "form_id")
    assert (await http.post(assign_url, json={"client_id": client_id}, headers=elsewhere)).status_code == 404
    assert await _outbox(runtime, clinic_id) == []

    assigned = await http.post(
        assign_url, json={"client_id": client_id, "appointment_id": "a-1"}, headers=staff
    )
    assert assigned.status_code == 201, assigned.text
    assignment = assigned.json()
    assignment_id = assignment["assignment_id"]
    assert (assignment["version"], assignment["patient_id"], assignment["status"]) == (1, "p-1", "pending")

    # A changed definition is version 2; the same again changes nothing; the assignment keeps version 1.
    same = await http.post(f"/clinic/v1/forms/{form_id}/versions", json=FORM, headers=staff)
    assert (same.status_code, same.json()["version"]) == (200, 1)
    revised_form = {**FORM, "fields": [*FORM["fields"], {"name": "notes", "label": "Notes", "type": "text"}]}
    revised = await http.post(f"/clinic/v1/forms/{form_id}/versions", json=revised_form, headers=staff)
    assert (revised.status_code, revised.json()["version"], revised.json()["form_id"]) == (201, 2, form_id)
    assert (await http.get(f"/clinic/v1/forms/{form_id}?version=1", headers=staff)).json()["version"] == 1
    assert (await http.get(f"/clinic/v1/forms/{form_id}", headers=staff)).json()["version"] == 2

    # The parent's forms: theirs only; another parent's looks like none.
    listed = (await http.get("/api/v1/forms", headers=mine)).json()["forms"]
    assert [(f["assignment_id"], f["status"], f["title"]) for f in listed] == [
        (assignment_id, "pending", "Surgery consent")
    ]
    assert (await http.get("/api/v1/forms", headers=theirs)).json() == {"forms": []}
    detail = (await http.get(f"/api/v1/forms/{assignment_id}", headers=mine)).json()
    assert (detail["form"]["version"], len(detail["form"]["fields"]), detail["answers"]) == (1, 4, None)
    url = f"/api/v1/forms/{assignment_id}/submission"
    for auth in (theirs, signing_key.parent_headers(f"another-{tag}", client_id)):
        assert (await http.get(f"/api/v1/forms/{assignment_id}", headers=auth)).status_code == 404
        response = await http.post(url, json={"answers": ANSWERS}, headers=auth)
        assert (response.status_code, response.json()["field"]) == (404, "assignment_id")
    assert (await http.get(f"/api/v1/forms/{uuid.uuid4()}", headers=mine)).status_code == 404
    assert (await http.get("/api/v1/forms/nope", headers=mine)).status_code == 422
    early_pdf = await http.get(f"/api/v1/forms/{assignment_id}/pdf", headers=mine)
    assert early_pdf.status_code == 409

    # Answers that break the form: 422 naming each field, nothing stored or published.
    for answers, locs in (
        ({**ANSWERS, "pet_weight": ""}, [["body", "answers", "pet_weight"]]),
        (
            {**ANSWERS, "diet": "raw", "last_meal": "tomorrow"},
            [["body", "answers", "diet"], ["body", "answers", "last_meal"]],
        ),
        (
            {**ANSWERS, "consent": {"full_name": "Robin Reyes", "consent": False}},
            [["body", "answers", "consent", "consent"]],
        ),
        ({k: v for k, v in ANSWERS.items() if k != "consent"}, [["body", "answers", "consent"]]),
        ({**ANSWERS, "notes": "v2 only"}, [["body", "answers", "notes"]]),
    ):
        response = await http.post(url, json={"answers": answers}, headers=mine)
        assert response.status_code == 422, response.text
        assert [e["loc"] for e in response.json()["detail"]] == locs
        assert "raw" not in response.text
    nul = await http.post(url, json={"answers": {**ANSWERS, "pet_weight": "1\u0000"}}, headers=mine)
    assert nul.status_code == 422
    assert (await http.post(url, json={"answers": ANSWERS, "extra": 1}, headers=mine)).status_code == 422
    assert (
        await _count(runtime, "SELECT count(*) FROM form_submissions WHERE clinic_id = :c", c=clinic_id) == 0
    )
    assert [type(e).__name__ for _, e in await _outbox(runtime, clinic_id)] == ["FormAssigned"]

    submitted = await http.post(url, json={"answers": ANSWERS}, headers=mine)
    assert submitted.status_code == 201, submitted.text
    submission = submitted.json()
    submission_id = submission["submission_id"]
    signed = submission["answers"]["consent"]
    assert (signed["full_name"], signed["consent"], submission["version"]) == ("Robin Reyes", True, 1)
    assert datetime.fromisoformat(signed["signed_at"]) == datetime.fromisoformat(submission["submitted_at"])
    again = await http.post(url, json={"answers": ANSWERS}, headers=mine)
    assert (again.status_code, again.json()["field"]) == (409, "assignment_id")
    listed = (await http.get("/api/v1/forms", headers=mine)).json()["forms"]
    assert [(f["status"], f["submission_id"]) for f in listed] == [("completed", submission_id)]
    assert (await http.get(f"/api/v1/forms/{assignment_id}", headers=mine)).json()["answers"]["diet"] == "dry"

    # The clinic: the submission (with the version answered) and its PDF; another clinic sees nothing.
    completed = (await http.get("/clinic/v1/form-submissions?status=completed", headers=staff)).json()
    assert [s["submission_id"] for s in completed["submissions"]] == [submission_id]
    assert (await http.get("/clinic/v1/form-submissions?status=pending", headers=staff)).json() == {
        "submissions": []
    }
    assert (await http.get("/clinic/v1/form-submissions?status=nope", headers=staff)).status_code == 422
    shown = (await http.get(f"/clinic/v1/form-submissions/{submission_id}", headers=staff)).json()
    assert (shown["submission"]["answers"]["pet_weight"], shown["form"]["version"]) == ("12.5", 1)
    assert (
        await http.get(f"/clinic/v1/form-submissions/{submission_id}", headers=elsewhere)
    ).status_code == 404
    assert (await http.get(f"/clinic/v1/form-submissions/{submission_id}", headers=mine)).status_code == 403
    for pdf_url, auth in (
        (f"/clinic/v1/form-submissions/{submission_id}/pdf", staff),
        (f"/api/v1/forms/{assignment_id}/pdf", mine),
    ):
        pdf = await http.get(pdf_url, headers=auth)
        assert (pdf.status_code, pdf.headers["content-type"]) == (200, "application/pdf")
        assert pdf.content.startswith(b"%PDF")
        words = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        for expected in ("Surgery consent", "Robin Reyes", "12.5", "Rex", "consent given"):
            assert expected in words, (expected, words)
    assert (await http.get(f"/api/v1/forms/{assignment_id}/pdf", headers=theirs)).status_code == 404

    # Published: the assignment and the submission, keyed to the client, without the answers.
    published_events = await _outbox(runtime, clinic_id)
    assert {key for key, _ in published_events} == {f"{clinic_id}:{client_id}"}
    first, second = (e for _, e in published_events)
    assert isinstance(first, FormAssigned)
    assert (str(first.assignment_id), first.version, first.title, first.patient_id, first.appointment_id) == (
        assignment_id,
        1,
        "Surgery consent",
        "p-1",
        "a-1",
    )
    assert isinstance(second, FormSubmitted)
    assert (str(second.submission_id), str(second.form_id), second.version) == (submission_id, form_id, 1)
    assert not any(word in e.model_dump_json() for _, e in published_events for word in ("Robin", "12.5"))
    found = await read_events(kafka_bootstrap, topics.PETS, clinic_id=clinic_id, count=2)
    assert [(e.event_type, e.producer) for e, _, _ in found] == [
        ("FormAssigned", "pets"),
        ("FormSubmitted", "pets"),
    ]


async def test_an_erased_clients_forms_are_deleted_and_the_clinics_form_stays(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter
) -> None:
    http, runtime = pets
    tag = uuid.uuid4().hex[:6]
    clinic_id, erased, kept = f"clinic-fe-{tag}", f"erased-{tag}", f"kept-{tag}"
    staff = signing_key.staff_headers(clinic_id)
    for client_id in (erased, kept):
        await producer(patient(f"p-{client_id}", "Rex"), clinic_id, client_id)
        await _known(http, signing_key.parent_headers(clinic_id, client_id), f"p-{client_id}")
    form_id = (await http.post("/clinic/v1/forms", json=FORM, headers=staff)).json()["form_id"]
    for client_id in (erased, kept):
        assigned = await http.post(
            f"/clinic/v1/forms/{form_id}/assignments",
            json={"client_id": client_id, "patient_id": f"p-{client_id}"},
            headers=staff,
        )
        assert assigned.status_code == 201, assigned.text
        await http.post(
            f"/clinic/v1/forms/{form_id}/assignments", json={"client_id": client_id}, headers=staff
        )  # a second one, left pending
        submitted = await http.post(
            f"/api/v1/forms/{assigned.json()['assignment_id']}/submission",
            json={"answers": ANSWERS},
            headers=signing_key.parent_headers(clinic_id, client_id),
        )
        assert submitted.status_code == 201, submitted.text
    rows = """SELECT (SELECT count(*) FROM form_assignments WHERE client_id = :k)
        + (SELECT count(*) FROM form_submissions WHERE client_id = :k)"""
    assert await _count(runtime, rows, k=erased) == await _count(runtime, rows, k=kept) == 3

    await producer(ClientErasureRequested(erasure_id=uuid.uuid4()), clinic_id, erased)
    await eventually(lambda: _count(runtime, rows, k=erased), lambda n: n == 0)
    assert await _count(runtime, rows, k=kept) == 3
    assert await _count(runtime, "SELECT count(*) FROM form_versions WHERE form_id = :f", f=form_id) == 1
    assert (
        await http.get("/api/v1/forms", headers=signing_key.parent_headers(clinic_id, erased))
    ).json() == {"forms": []}
    assert len((await http.get("/clinic/v1/form-submissions", headers=staff)).json()["submissions"]) == 2
