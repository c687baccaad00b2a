"""Online booking and the outbound queue against a real PostgreSQL and a real Kafka broker, through
sync's ASGI app: slots from the PIMS, holds, a 20-way race for one slot, the connector's pull with a
cursor, idempotent ack and nack, flagged items for staff, and a parent's answer to an appointment."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import petportal_sync
from petportal_devkit.testing import DatabaseFactory, app_client, read_events
from petportal_devkit.tokens import TokenMinter
from petportal_runtime.migrations import upgrade
from petportal_schemas import topics
from petportal_sync.bootstrap import bootstrap
from petportal_sync.entrypoints.app import create_app
from petportal_sync.entrypoints.cli import create_clinic
from petportal_sync.settings import SyncSettings

pytestmark = pytest.mark.integration

MIGRATIONS = Path(petportal_sync.__file__).parent / "migrations"
PARENTS = 20


@dataclass
class Clinic:
    clinic_id: str
    http: httpx.AsyncClient
    pims: dict[str, str]  # the connector's headers
    tokens: TokenMinter
    settings: SyncSettings

    def parent(self, n: int) -> dict[str, str]:
        return self.tokens.parent_headers(self.clinic_id, f"c{n}")

    def staff(self) -> dict[str, str]:
        return self.tokens.staff_headers(self.clinic_id)

    async def send(self, *records: dict[str, Any]) -> dict[str, Any]:
        answer = await self.http.post(
            "/pims/v1/records", headers=self.pims, json={"pims": "ezyvet", "records": list(records)}
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["rejected"] == [], body
        return body


def _slot(slot_id: str, hours: float, **fields: Any) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)
    return {
        "kind": "slot",
        "slot_id": slot_id,
        "starts_at": start.isoformat(),
        "appointment_type": "Exam",
        **fields,
    }


@pytest.fixture
async def clinic(
    make_database: DatabaseFactory, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[Clinic]:
    url = make_database("sync")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    settings = SyncSettings(
        environment="test",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
    )
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    args = argparse.Namespace(
        clinic_id=clinic_id,
        name="Maple Vets",
        pims="ezyvet",
        sms_number="(415) 555-0100",
        timezone="America/Chicago",
    )
    assert await create_clinic(args, settings) == 0
    api_key = json.loads(capsys.readouterr().out)["api_key"]
    tokens = TokenMinter()
    app = create_app(bootstrap(settings, token_verifier=tokens.verifier))
    async with app_client(app, "http://sync") as http:
        c = Clinic(clinic_id, http, {"Authorization": f"Bearer {api_key}"}, tokens, settings)
        contacts = [
            {"kind": "contact", "client_id": f"c{n}", "first_name": "Pat", "last_name": f"P{n}"}
            for n in range(PARENTS)
        ]
        patients = [
            {
                "kind": "patient",
                "client_id": f"c{n}",
                "patient_id": f"p{n}",
                "name": "Rex",
                "species": "Canine",
            }
            for n in range(PARENTS)
        ]
        await c.send({"kind": "clinic_settings", "booking_mode": "direct"}, *contacts, *patients)
        yield c


async def test_a_clinic_without_direct_booking_says_so(clinic: Clinic) -> None:
    await clinic.send({"kind": "clinic_settings", "booking_mode": "request"})
    answer = await clinic.http.get(
        "/api/v1/booking/slots", params={"clinic_id": clinic.clinic_id}, headers=clinic.parent(0)
    )
    assert answer.status_code == 409
    assert answer.json()["field"] == "clinic_id"
    other = await clinic.http.get(
        "/api/v1/booking/slots", params={"clinic_id": "elsewhere"}, headers=clinic.parent(0)
    )
    assert other.status_code == 404
    assert other.json()["field"] == "clinic_id"


async def test_slots_follow_the_pims_versions_and_holds(clinic: Clinic) -> None:
    await clinic.send(_slot("s1", 24, version=2), _slot("s2", 48), _slot("past", -1))
    await clinic.send(_slot("s1", 24, status="booked", version=1))  # older: changes nothing
    slots = await clinic.http.get(
        "/api/v1/booking/slots", params={"clinic_id": clinic.clinic_id}, headers=clinic.parent(0)
    )
    assert slots.status_code == 200
    body = slots.json()
    assert body["timezone"] == "America/Chicago"
    assert [s["slot_id"] for s in body["slots"]] == ["s1", "s2"]

    hold = await clinic.http.post(
        "/api/v1/booking/holds",
        json={"clinic_id": clinic.clinic_id, "slot_id": "s1"},
        headers=clinic.parent(0),
    )
    assert hold.status_code == 201, hold.text
    # Held: gone for the others, still listed for the holder; another parent cannot hold or book it.
    others = await clinic.http.get(
        "/api/v1/booking/slots", params={"clinic_id": clinic.clinic_id}, headers=clinic.parent(1)
    )
    assert [s["slot_id"] for s in others.json()["slots"]] == ["s2"]
    taken = await clinic.http.post(
        "/api/v1/booking/bookings",
        json={"clinic_id": clinic.clinic_id, "slot_id": "s1", "patient_id": "p1"},
        headers=clinic.parent(1),
    )
    assert taken.status_code == 409
    assert taken.json()["field"] == "slot_id"
    # Letting go frees it.
    released = await clinic.http.delete(
        f"/api/v1/booking/holds/{hold.json()['hold_id']}",
        params={"clinic_id": clinic.clinic_id},
        headers=clinic.parent(0),
    )
    assert released.status_code == 204
    again = await clinic.http.get(
        "/api/v1/booking/slots", params={"clinic_id": clinic.clinic_id}, headers=clinic.parent(1)
    )
    assert [s["slot_id"] for s in again.json()["slots"]] == ["s1", "s2"]

    await clinic.send(_slot("s1", 24, status="booked", version=3))  # newer: booked in the PIMS
    last = await clinic.http.get(
        "/api/v1/booking/slots", params={"clinic_id": clinic.clinic_id}, headers=clinic.parent(1)
    )
    assert [s["slot_id"] for s in last.json()["slots"]] == ["s2"]


async def test_bad_bookings_store_nothing(clinic: Clinic) -> None:
    await clinic.send(_slot("s1", 24))
    cases = [
        ({"slot_id": "s1", "patient_id": "p1"}, 404, "patient_id"),  # parent 0's pet is p0
        ({"slot_id": "nope", "patient_id": "p0"}, 404, "slot_id"),
    ]
    for body, status, field in cases:
        answer = await clinic.http.post(
            "/api/v1/booking/bookings", json={"clinic_id": clinic.clinic_id, **body}, headers=clinic.parent(0)
        )
        assert answer.status_code == status, answer.text
        assert answer.json()["field"] == field
    huge = await clinic.http.post(
        "/api/v1/booking/bookings",
        json={"clinic_id": clinic.clinic_id, "slot_id": "s1", "patient_id": "p0", "note": "x" * 501},
        headers=clinic.parent(0),
    )
    assert huge.status_code == 422
    mine = await clinic.http.get("/api/v1/booking/bookings", headers=clinic.parent(0))
    assert mine.json() == {"bookings": []}
    pulled = await clinic.http.get("/pims/v1/outbound", headers=clinic.pims)
    assert pulled.json()["items"] == []


async def test_twenty_parents_race_for_one_slot_and_exactly_one_books_it(clinic: Clinic) -> None:
    await clinic.send(_slot("only", 24))

    async def attempt(n: int) -> int:
        answer = await clinic.http.post(
            "/api/v1/booking/bookings",
            json={"clinic_id": clinic.clinic_id, "slot_id": "only", "patient_id": f"p{n}"},
            headers=clinic.parent(n),
        )
        return answer.status_code

    statuses = await asyncio.gather(*(attempt(n) for n in range(PARENTS)))
    assert sorted(statuses) == [201] + [409] * (PARENTS - 1)
    pulled = (await clinic.http.get("/pims/v1/outbound", headers=clinic.pims)).json()
    assert [item["kind"] for item in pulled["items"]] == ["booking"]
    assert pulled["items"][0]["payload"]["slot_id"] == "only"


async def test_the_connector_pulls_acks_and_nacks_idempotently(clinic: Clinic) -> None:
    await clinic.send(_slot("a", 24), _slot("b", 25), _slot("c", 26))
    booked: dict[str, str] = {}
    for n, slot in enumerate(("a", "b", "c")):
        answer = await clinic.http.post(
            "/api/v1/booking/bookings",
            json={"clinic_id": clinic.clinic_id, "slot_id": slot, "patient_id": f"p{n}", "note": "limping"},
            headers=clinic.parent(n),
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "pending"
        booked[slot] = answer.json()["booking_id"]

    first = (await clinic.http.get("/pims/v1/outbound", params={"limit": 2}, headers=clinic.pims)).json()
    assert [i["item_id"] for i in first["items"]] == [booked["a"], booked["b"]]
    rest = (
        await clinic.http.get(
            "/pims/v1/outbound", params={"after": first["next_cursor"]}, headers=clinic.pims
        )
    ).json()
    assert [i["item_id"] for i in rest["items"]] == [booked["c"]]

    ack = await clinic.http.post(
        f"/pims/v1/outbound/{booked['a']}/ack", json={"pims_reference": "APT-9"}, headers=clinic.pims
    )
    assert ack.status_code == 200
    assert ack.json()["already"] is False
    again = await clinic.http.post(f"/pims/v1/outbound/{booked['a']}/ack", json={}, headers=clinic.pims)
    assert again.status_code == 200
    assert again.json()["already"] is True
    assert again.json()["item"]["pims_reference"] == "APT-9"  # the first answer stands
    assert (
        await clinic.http.post(
            f"/pims/v1/outbound/{booked['a']}/nack", json={"reason": "other"}, headers=clinic.pims
        )
    ).status_code == 409
    unknown = await clinic.http.post(f"/pims/v1/outbound/{uuid.uuid4()}/ack", json={}, headers=clinic.pims)
    assert unknown.status_code == 404

    nack = await clinic.http.post(
        f"/pims/v1/outbound/{booked['b']}/nack", json={"reason": "slot_unavailable"}, headers=clinic.pims
    )
    assert nack.status_code == 200
    assert nack.json()["item"]["status"] == "nacked"
    flagged = await clinic.http.post(
        f"/pims/v1/outbound/{booked['c']}/nack",
        json={"reason": "client_not_matched", "text": "two Pats"},
        headers=clinic.pims,
    )
    assert flagged.json()["item"]["status"] == "flagged"

    # Answered items are no longer pulled, even from the start.
    assert (await clinic.http.get("/pims/v1/outbound", headers=clinic.pims)).json()["items"] == []
    states = {
        b["slot"]["slot_id"]: b["status"]
        for n in range(3)
        for b in (await clinic.http.get("/api/v1/booking/bookings", headers=clinic.parent(n))).json()[
            "bookings"
        ]
    }
    assert states == {"a": "confirmed", "b": "rejected", "c": "needs_staff"}
    # The refused slot was gone in the PIMS: not offered again; the flagged one stays taken.
    free = await clinic.http.get(
        "/api/v1/booking/slots", params={"clinic_id": clinic.clinic_id}, headers=clinic.parent(5)
    )
    assert free.json()["slots"] == []

    # Staff see the flagged item, retry it (it is pulled again), and the PIMS takes it this time.
    listed = await clinic.http.get(
        "/clinic/v1/outbound", params={"status": "flagged"}, headers=clinic.staff()
    )
    assert [i["item_id"] for i in listed.json()["items"]] == [booked["c"]]
    retried = await clinic.http.post(f"/clinic/v1/outbound/{booked['c']}/retry", headers=clinic.staff())
    assert retried.status_code == 200
    assert retried.json()["status"] == "pending"
    pulled = (
        await clinic.http.get("/pims/v1/outbound", params={"after": rest["next_cursor"]}, headers=clinic.pims)
    ).json()
    assert [i["item_id"] for i in pulled["items"]] == [booked["c"]]
    await clinic.http.post(f"/pims/v1/outbound/{booked['c']}/ack", json={}, headers=clinic.pims)

    kafka = clinic.settings.kafka_bootstrap_servers
    confirmed = await read_events(
        kafka, topics.SYNC, clinic_id=clinic.clinic_id, event_type="AppointmentBooked", count=2
    )
    assert sorted(str(event.booking_id) for _, event, _ in confirmed) == sorted([booked["a"], booked["c"]])  # type: ignore[attr-defined]
    rejected = await read_events(
        kafka, topics.SYNC, clinic_id=clinic.clinic_id, event_type="AppointmentBookingRejected", count=1
    )
    assert [(str(e.booking_id), e.reason) for _, e, _ in rejected] == [(booked["b"], "slot_unavailable")]  # type: ignore[attr-defined]


async def test_a_nack_that_is_not_about_the_time_frees_the_slot(clinic: Clinic) -> None:
    await clinic.send(_slot("a", 24))
    made = await clinic.http.post(
        "/api/v1/booking/bookings",
        json={"clinic_id": clinic.clinic_id, "slot_id": "a", "patient_id": "p0"},
        headers=clinic.parent(0),
    )
    await clinic.http.post(
        f"/pims/v1/outbound/{made.json()['booking_id']}/nack",
        json={"reason": "pims_error"},
        headers=clinic.pims,
    )
    free = await clinic.http.get(
        "/api/v1/booking/slots", params={"clinic_id": clinic.clinic_id}, headers=clinic.parent(1)
    )
    assert [s["slot_id"] for s in free.json()["slots"]] == ["a"]


async def test_a_parent_answers_an_appointment_once(clinic: Clinic) -> None:
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    past = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0).isoformat()
    await clinic.send(
        {
            "kind": "appointment",
            "client_id": "c0",
            "appointment_id": "A1",
            "patient_id": "p0",
            "starts_at": start,
        },
        {
            "kind": "appointment",
            "client_id": "c0",
            "appointment_id": "OLD",
            "patient_id": "p0",
            "starts_at": past,
        },
    )
    body = {"clinic_id": clinic.clinic_id, "answer": "confirm"}
    first = await clinic.http.post("/api/v1/appointments/A1/answer", json=body, headers=clinic.parent(0))
    assert first.status_code == 201, first.text
    second = await clinic.http.post("/api/v1/appointments/A1/answer", json=body, headers=clinic.parent(0))
    assert second.status_code == 200
    assert (
        await clinic.http.post("/api/v1/appointments/A1/answer", json=body, headers=clinic.parent(1))
    ).status_code == 404
    assert (
        await clinic.http.post("/api/v1/appointments/OLD/answer", json=body, headers=clinic.parent(0))
    ).status_code == 409
    items = (await clinic.http.get("/pims/v1/outbound", headers=clinic.pims)).json()["items"]
    assert [(i["kind"], i["payload"]["appointment_id"], i["payload"]["answer"]) for i in items] == [
        ("appointment_answer", "A1", "confirm")
    ]
    events = await read_events(
        clinic.settings.kafka_bootstrap_servers,
        topics.SYNC,
        clinic_id=clinic.clinic_id,
        count=1,
        within=30,
        event_type="AppointmentAnswered",
    )
    assert [envelope.client_id for envelope, _, _ in events] == ["c0"]
    assert [e.appointment_id for _, e, _ in events] == ["A1"]  # type: ignore[attr-defined]
