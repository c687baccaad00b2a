"""A clinic form goes clinic → parent → clinic through the gateway: staff publish a form and assign it
about an appointment, it appears on the parent's To-Do list, an answer that breaks the form is refused
naming the field (nothing stored), the valid answer is stored with the version it answered, the form
leaves the To-Do list, and staff read the submission and its PDF."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from .stack import Portal, Stack, wait_for

pytestmark = pytest.mark.e2e

FORM = {
    "title": "Pre-surgery questionnaire",
    "fields": [
        {"name": "pet_weight", "label": "Weight (kg)", "type": "text", "required": True, "max_length": 10},
        {"name": "fasting", "label": "Fasting since midnight?", "type": "choice", "required": True,
         "options": ["yes", "no"]},
        {"name": "last_meal", "label": "Last meal", "type": "date"},
        {"name": "consent", "label": "I consent to anaesthesia", "type": "signature", "required": True},
    ],
}  # fmt: skip


def test_a_published_form_is_on_the_todo_list_refuses_a_bad_answer_and_leaves_once_completed(
    stack: Stack,
) -> None:
    portal = Portal(stack, f"e2e-forms-{uuid.uuid4().hex[:6]}", sms_number="+15005550026")
    # Beyond the 7 days in which the To-Do list asks to confirm an appointment: only the form is listed.
    soon = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    assert portal.push(
        {"kind": "contact", "client_id": "F-1", "first_name": "Frankie", "last_name": "Fox",
         "email": f"forms.{uuid.uuid4().hex[:6]}@example.com"},
        {"kind": "patient", "client_id": "F-1", "patient_id": "FP-1", "name": "Biscuit", "species": "dog"},
        {"kind": "appointment", "client_id": "F-1", "appointment_id": "FA-1", "patient_id": "FP-1",
         "starts_at": soon.isoformat().replace("+00:00", "Z"), "reason": "Dental"},
    )["rejected"] == []  # fmt: skip
    token = portal.parent_token("F-1")
    parent = {"authorization": f"Bearer {token}"}
    staff = {"authorization": f"Bearer {portal.staff_token()}"}
    wait_for(
        lambda: portal.http.get("/api/v1/appointments", headers=parent).json()["appointments"] or None,
        what="the appointment in pets",
    )

    # Staff publish the form and assign it about the appointment (its pet comes with it).
    published = portal.http.post("/clinic/v1/forms", json=FORM, headers=staff)
    assert published.status_code == 201, published.text
    form_id = published.json()["form_id"]
    assert published.json()["json_schema"]["required"] == ["pet_weight", "fasting", "consent"]
    assert portal.http.post("/clinic/v1/forms", json=FORM, headers=parent).status_code == 403
    assigned = portal.http.post(
        f"/clinic/v1/forms/{form_id}/assignments",
        json={"client_id": "F-1", "appointment_id": "FA-1"},
        headers=staff,
    )
    assert assigned.status_code == 201, assigned.text
    assignment_id = assigned.json()["assignment_id"]
    assert (assigned.json()["patient_id"], assigned.json()["version"]) == ("FP-1", 1)

    # On the parent's To-Do list, leading to the form.
    todo = portal.wait_todo(
        token, [("form_pending", "Please fill in: Pre-surgery questionnaire")], "the form"
    )
    assert [i["action"]["href"] for i in todo["items"]] == [f"/forms/{assignment_id}"]
    shown = portal.http.get(f"/api/v1/forms/{assignment_id}", headers=parent)
    assert shown.status_code == 200, shown.text
    assert [f["name"] for f in shown.json()["form"]["fields"]] == [
        "pet_weight",
        "fasting",
        "last_meal",
        "consent",
    ]

    # An answer that breaks the form: 422 naming the field; nothing stored.
    url = f"/api/v1/forms/{assignment_id}/submission"
    answers = {
        "pet_weight": "8.2",
        "fasting": "yes",
        "consent": {"full_name": "Frankie Fox", "consent": True},
    }
    invalid = portal.http.post(
        url, json={"answers": {**answers, "pet_weight": "much too heavy"}}, headers=parent
    )
    assert invalid.status_code == 422, invalid.text
    assert [e["loc"] for e in invalid.json()["detail"]] == [["body", "answers", "pet_weight"]]
    unsigned = portal.http.post(
        url,
        json={"answers": {**answers, "consent": {"full_name": "Frankie Fox", "consent": False}}},
        headers=parent,
    )
    assert [e["loc"] for e in unsigned.json()["detail"]] == [["body", "answers", "consent", "consent"]]
    assert portal.http.get(
        "/clinic/v1/form-submissions", params={"status": "completed"}, headers=staff
    ).json() == {"submissions": []}
    assert [f["status"] for f in portal.http.get("/api/v1/forms", headers=parent).json()["forms"]] == [
        "pending"
    ]

    # The valid answer: stored with the version and the signature's time; once only.
    submitted = portal.http.post(url, json={"answers": answers}, headers=parent)
    assert submitted.status_code == 201, submitted.text
    submission = submitted.json()
    assert (submission["version"], submission["answers"]["consent"]["full_name"]) == (1, "Frankie Fox")
    assert "signed_at" in submission["answers"]["consent"]
    assert portal.http.post(url, json={"answers": answers}, headers=parent).status_code == 409

    # Gone from the To-Do list.
    portal.wait_todo(token, [], "the form completed")

    # Staff see the submission (the version answered) and its PDF; the parent gets the PDF too.
    listed = portal.http.get(
        "/clinic/v1/form-submissions", params={"status": "completed"}, headers=staff
    ).json()
    assert [s["submission_id"] for s in listed["submissions"]] == [submission["submission_id"]]
    detail = portal.http.get(f"/clinic/v1/form-submissions/{submission['submission_id']}", headers=staff)
    assert detail.status_code == 200, detail.text
    assert (detail.json()["submission"]["answers"]["pet_weight"], detail.json()["form"]["version"]) == (
        "8.2",
        1,
    )
    pdf = portal.http.get(f"/clinic/v1/form-submissions/{submission['submission_id']}/pdf", headers=staff)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    mine = portal.http.get(f"/api/v1/forms/{assignment_id}/pdf", headers=parent)
    assert (mine.status_code, mine.content[:4]) == (200, b"%PDF")
