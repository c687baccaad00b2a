"""Each supported PIMS's sample batch (docs/pims/samples), pushed natively through the gateway, shows
up on the parent's pet pages; an overdue reminder is on the To-Do list until the PIMS says it is done."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from .stack import Portal, Stack, wait_for

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "pims" / "samples"
# Each clinic its own texting number: a clinic number belongs to one clinic (others use CLINIC_NUMBER).
SMS_NUMBERS = {
    "avimark": "+15005550011",
    "cornerstone": "+15005550012",
    "ezyvet": "+15005550013",
    "impromed": "+15005550014",
    "pulse": "+15005550015",
}
CLIENT_IDS = {
    "ezyvet": "1001",
    "cornerstone": "C1001",
    "avimark": "1001",
    "impromed": "1001",
    "pulse": "c-1001",
}
PET_IDS = {"ezyvet": "2001", "cornerstone": "P2001", "avimark": "2001", "impromed": "2001", "pulse": "p-2001"}


def _push(portal: Portal, pims: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = portal.http.post(
        f"/pims/v1/{pims}/records",
        json={"records": records},
        headers={"authorization": f"Bearer {portal.api_key}"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("pims", sorted(CLIENT_IDS))
def test_a_pims_sample_reaches_the_parents_pet_pages_through_the_gateway(stack: Stack, pims: str) -> None:
    portal = Portal(stack, f"e2e-{pims}", sms_number=SMS_NUMBERS[pims], pims=pims)
    records = json.loads((SAMPLES / f"{pims}.json").read_text())["records"]
    assert _push(portal, pims, records) == {"accepted": len(records), "rejected": []}
    parent = portal.parent_token(CLIENT_IDS[pims])
    auth = {"authorization": f"Bearer {parent}"}
    pet = PET_IDS[pims]

    def get(path: str) -> Any:
        response = portal.http.get(f"/api/v1/pets/{pet}{path}", headers=auth)
        return response if response.status_code == 200 else None

    medications = wait_for(
        lambda: (r := get("/medications")) is not None and r.json()["medications"] and r,
        what=f"{pims}: the pet's medication",
    )
    assert medications.json()["medications"][0]["name"] == "Carprofen 75 mg"
    wait_for(lambda: (r := get("/appointments")) is not None and r.json()["appointments"], what="appointment")
    [pet_listed] = portal.http.get("/api/v1/pets", headers=auth).json()["pets"]
    assert (pet_listed["name"], pet_listed["microchip"]) == ("Biscuit", "985112345678901")
    assert pet_listed["clinic_name"] == "E2E Clinic"
    pdf = wait_for(
        lambda: (r := get("/id-card.pdf")) is not None and "RT-4471" in _text(r.content) and r,
        what="the ID card with the rabies tag",
    )
    assert "985112345678901" in _text(pdf.content)
    reminders = portal.http.get(f"/api/v1/pets/{pet}/reminders", headers=auth)
    if pims == "ezyvet":
        assert reminders.status_code == 409  # no reminders capability: said, not an empty list
    else:  # the sample's reminder is due in 2030: more than six months ahead, so not shown yet
        assert reminders.status_code == 200
        assert reminders.json()["reminders"] == []


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_an_overdue_reminder_is_on_the_todo_list_until_the_pims_says_it_is_booked(stack: Stack) -> None:
    portal = Portal(stack, "e2e-overdue", sms_number="+15005550016", pims="cornerstone")
    records = json.loads((SAMPLES / "cornerstone.json").read_text())["records"]
    reminder = next(r for r in records if r["table"] == "Reminder")
    overdue = {"table": "Reminder", "row": {**reminder["row"], "DueDate": "2020-01-01"}}
    _push(portal, "cornerstone", [*records[:2], overdue])
    parent = portal.parent_token("C1001")
    portal.wait_todo(parent, [("overdue_services", "1 service is overdue")], "the overdue service")
    booked = {
        "table": "Reminder",
        "row": {**overdue["row"], "Status": "Scheduled", "ModifiedDate": 20260102120000},
    }
    _push(portal, "cornerstone", [booked])
    portal.wait_todo(parent, [], "the reminder gone once booked")
