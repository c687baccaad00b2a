"""pets against a real PostgreSQL and a real Kafka broker, through the real ASGI app."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pypdf import PdfReader
from sqlalchemy import text

import petportal_pets
from petportal_devkit.testing import app_client, read_events
from petportal_devkit.tokens import TokenMinter
from petportal_pets.bootstrap import bootstrap
from petportal_pets.entrypoints.app import create_app
from petportal_pets.settings import PetsSettings
from petportal_runtime.migrations import upgrade
from petportal_schemas import (
    AppointmentCancelled,
    AppointmentRequestAnswered,
    AppointmentRequested,
    AppointmentUpserted,
    ClientDataErased,
    ClientErasureRequested,
    ClinicRegistered,
    ClinicSettingsChanged,
    Envelope,
    Event,
    MedicationPrescribed,
    PatientRemoved,
    PatientUpserted,
    RefillRequestDecided,
    RefillRequested,
    RequestAnswerSeen,
    ServiceReminderUpserted,
    VaccinationRecorded,
    topics,
)

pytestmark = pytest.mark.integration

MIGRATIONS = Path(petportal_pets.__file__).parent / "migrations"
T = TypeVar("T")


@pytest.fixture(scope="module")
def signing_key() -> TokenMinter:
    return TokenMinter()


def headers(key: TokenMinter, clinic_id: str, client_id: str) -> dict[str, str]:
    return key.parent_headers(clinic_id, client_id)


@pytest.fixture
async def pets(
    make_database: Callable[[str], str], kafka_bootstrap: str, signing_key: TokenMinter
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    url = make_database("pets")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    settings = PetsSettings(
        environment="test",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
    )
    service = bootstrap(settings, token_verifier=signing_key.verifier)
    app = create_app(service)
    async with app_client(app, "http://pets") as http:
        yield http, service.runtime


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[Callable[..., Awaitable[Envelope]]]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def publish(event: Event, clinic_id: str, client_id: str | None, **kw: Any) -> Envelope:
        envelope = Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer="test", **kw)
        await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
        return envelope

    yield publish
    await producer.stop()


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 30) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if done(result) or asyncio.get_running_loop().time() > deadline:
            assert done(result), f"timed out; last: {result!r}"
            return result
        await asyncio.sleep(0.1)


def patient(patient_id: str, name: str = "Rex", **kw: Any) -> PatientUpserted:
    return PatientUpserted(patient_id=patient_id, name=name, species="Canine", **kw)


async def test_patients_become_the_parents_pets(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter
) -> None:
    http, runtime = pets
    sent: list[Envelope] = []

    async def send(event: Event, clinic: str, client: str, **kw: Any) -> Envelope:
        sent.append(envelope := await producer(event, clinic, client, **kw))
        return envelope

    clinic_id, client_id, other_client = (
        "clinic-p",
        f"client-{uuid.uuid4().hex[:8]}",
        f"other-{uuid.uuid4().hex[:8]}",
    )
    mine = headers(signing_key, clinic_id, client_id)
    assert (await http.get("/api/v1/pets", headers=mine)).json() == {"pets": []}

    born = datetime.now(UTC).date().replace(day=1) - timedelta(days=800)
    first = await send(
        patient(
            "p-1",
            "Rex",
            breed="Collie",
            sex="male neutered",
            date_of_birth=born,
            colour="black",
            weight_kg=21.5,
            microchip="985112345678901",
        ),
        clinic_id,
        client_id,
    )
    await send(patient("p-2", "Bella"), clinic_id, client_id)
    await send(patient("p-9", "Not yours"), clinic_id, other_client)

    async def names() -> list[str]:
        return [p["name"] for p in (await http.get("/api/v1/pets", headers=mine)).json()["pets"]]

    assert await eventually(names, lambda n: n == ["Bella", "Rex"])
    rex = (await http.get("/api/v1/pets/p-1", headers=mine)).json()
    assert rex["breed"] == "Collie"
    assert rex["weight_kg"] == 21.5
    assert rex["date_of_birth"] == born.isoformat()
    assert rex["age"]["years"] == 2
    assert rex["age"]["text"].startswith("2 years")
    assert (await http.get("/api/v1/pets/p-2", headers=mine)).json()["age"] is None

    # Another parent's pet and a missing one look the same.
    theirs = await http.get("/api/v1/pets/p-9", headers=mine)
    missing = await http.get("/api/v1/pets/nope", headers=mine)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"] == "no pet p-9"
    assert (await http.get("/api/v1/pets/bad%20id", headers=mine)).status_code == 422
    assert (await http.get("/api/v1/pets")).status_code == 401

    # An update renames; a stale update (older occurred_at) arriving later is ignored.
    await send(patient("p-1", "Rex II"), clinic_id, client_id)
    await send(
        patient("p-1", "Old Rex"), clinic_id, client_id, occurred_at=first.occurred_at - timedelta(hours=1)
    )
    await send(patient("p-3", "Marker"), clinic_id, client_id)
    assert await eventually(names, lambda n: n == ["Bella", "Marker", "Rex II"])

    async with runtime.transaction() as session:
        # Other tests' events share the broker (and pets consumes clinics too): count this clinic's.
        claimed = (
            await session.execute(
                text("SELECT count(*) FROM inbox WHERE consumer = 'pets' AND event_id = ANY(:ids)"),
                {"ids": [e.event_id for e in sent]},
            )
        ).scalar_one()
        rows = (
            await session.execute(text("SELECT count(*) FROM pets WHERE clinic_id = :c"), {"c": clinic_id})
        ).scalar_one()
    assert len(sent) == 6
    assert claimed == 6
    assert rows == 4


async def test_redelivered_patient_event_is_applied_once(
    pets: tuple[httpx.AsyncClient, Any], kafka_bootstrap: str, signing_key: TokenMinter
) -> None:
    http, runtime = pets
    clinic_id, client_id = "clinic-p", f"client-{uuid.uuid4().hex[:8]}"
    envelope = Envelope.wrap(
        patient("p-1", "Milo"), clinic_id=clinic_id, client_id=client_id, producer="test"
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for _ in range(2):
            await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
        marker = Envelope.wrap(
            patient("p-2", "Zed"), clinic_id=clinic_id, client_id=client_id, producer="test"
        )
        await producer.send_and_wait(marker.topic, marker.to_bytes(), key=marker.key.encode())
    finally:
        await producer.stop()
    mine = headers(signing_key, clinic_id, client_id)

    async def count() -> int:
        return len((await http.get("/api/v1/pets", headers=mine)).json()["pets"])

    assert await eventually(count, lambda n: n == 2)
    async with runtime.transaction() as session:
        claims = (
            await session.execute(
                text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": envelope.event_id}
            )
        ).scalar_one()
    assert claims == 1


async def test_query_and_path_text_the_portal_refuses_is_422(
    pets: tuple[httpx.AsyncClient, Any], signing_key: TokenMinter
) -> None:
    http, _ = pets
    mine = headers(signing_key, "clinic-edge", "k1")
    for url, loc in [
        ("/api/v1/pets/p%001", ["path", "patient_id"]),
        ("/api/v1/pets?sort=%00", ["query", "sort"]),
        ("/api/v1/pets?sort=%1B", ["query", "sort"]),
    ]:
        response = await http.get(url, headers=mine)
        assert response.status_code == 422, url
        assert response.json()["detail"][0]["loc"] == loc
    assert (await http.get("/api/v1/pets?sort=%ED%A0%80", headers=mine)).status_code == 200
    too_big = await http.request("GET", "/api/v1/pets", content=b"x" * (9 * 1024 * 1024), headers=mine)
    assert too_big.status_code == 413


async def test_a_pets_records_and_id_card_arrive_through_kafka_and_only_its_parent_reads_them(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter
) -> None:
    http, _ = pets
    clinic_id, client_id = f"clinic-{uuid.uuid4().hex[:6]}", f"client-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    today = now.date()
    await producer(
        ClinicRegistered(name="Maple Vets", pims="avimark", timezone="Europe/London"), clinic_id, None
    )
    await producer(ClinicSettingsChanged(phone="+441234567890"), clinic_id, None)
    await producer(patient("p-1", "Rex", microchip="985112345678901"), clinic_id, client_id)
    await producer(
        AppointmentUpserted(
            appointment_id="a-1", patient_id="p-1", starts_at=now + timedelta(days=2), reason="Exam"
        ),
        clinic_id,
        client_id,
    )
    await producer(
        ServiceReminderUpserted(
            reminder_id="r-1", patient_id="p-1", service="Rabies", due_on=today - timedelta(days=3)
        ),
        clinic_id,
        client_id,
    )
    await producer(
        VaccinationRecorded(
            vaccination_id="v-1", patient_id="p-1", name="DHPP", given_on=today - timedelta(days=9)
        ),
        clinic_id,
        client_id,
    )
    await producer(
        MedicationPrescribed(
            prescription_id="m-1",
            patient_id="p-1",
            name="Carprofen",
            refills_remaining=2,
            prescribed_on=today,
        ),
        clinic_id,
        client_id,
    )
    mine = headers(signing_key, clinic_id, client_id)

    async def get(path: str, auth: dict[str, str] = mine) -> httpx.Response:
        return await http.get(f"/api/v1/pets/p-1{path}", headers=auth)

    medications = await eventually(
        lambda: get("/medications"), lambda r: r.status_code == 200 and r.json()["medications"]
    )
    assert medications.json()["medications"][0]["refills_remaining"] == 2
    [appointment] = (await get("/appointments")).json()["appointments"]
    assert appointment["timezone"] == "Europe/London"
    assert (await http.get("/api/v1/appointments", headers=mine)).json()["appointments"][0][
        "pet_name"
    ] == "Rex"
    assert [(r["service"], r["overdue"]) for r in (await get("/reminders")).json()["reminders"]] == [
        ("Rabies", True)
    ]
    card = (await get("/id-card")).json()
    assert (card["clinic"]["name"], card["clinic"]["phone"]) == ("Maple Vets", "+441234567890")
    assert [v["name"] for v in card["vaccinations"]] == ["DHPP"]
    pdf = await get("/id-card.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    text_of_pdf = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "985112345678901" in text_of_pdf
    assert "DHPP" in text_of_pdf

    # Read-only signalment, and nothing of this pet for another parent, on every pets endpoint.
    write = await http.patch("/api/v1/pets/p-1", headers=mine, json={"name": "Max"})
    assert write.status_code == 405
    assert "practice-management system" in write.json()["detail"]
    someone_else = headers(signing_key, clinic_id, "intruder")
    for path in (
        "",
        "/appointments",
        "/reminders",
        "/vaccinations",
        "/medications",
        "/id-card",
        "/id-card.pdf",
    ):
        response = await get(path, someone_else)
        assert response.status_code == 404, path
        assert "Rex" not in response.text
    assert (await http.get("/api/v1/appointments", headers=someone_else)).json() == {"appointments": []}

    # A PIMS without reminders: a clear 409 naming the capability, not an empty list.
    await producer(
        ClinicRegistered(name="Maple Vets", pims="ezyvet", timezone="Europe/London"), clinic_id, None
    )
    refused = await eventually(lambda: get("/reminders"), lambda r: r.status_code == 409)
    assert "reminders" in refused.json()["detail"]


async def test_the_overview_answers_what_the_pets_and_appointments_lists_answer(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter
) -> None:
    """The home screen's one read (GET /api/v1/pets-overview) against the two lists it stands for,
    across two clinics: clinic names and time zones, visibility rules, past, cancelled and
    other parents' appointments, one for no pet in particular, a removed pet, a photo."""
    from PIL import Image

    http, runtime = pets
    suffix = uuid.uuid4().hex[:6]
    clinic_a, clinic_b = f"clinic-a-{suffix}", f"clinic-b-{suffix}"  # B never registers
    client_a, client_b, other = f"client-a-{suffix}", f"client-b-{suffix}", f"other-{suffix}"
    now = datetime.now(UTC)
    await producer(
        ClinicRegistered(name="Maple Vets", pims="avimark", timezone="America/Chicago"), clinic_a, None
    )
    await producer(
        ClinicSettingsChanged(appointment_visibility={"hidden_types": ["euthanasia"]}), clinic_a, None
    )
    born = now.date().replace(day=1) - timedelta(days=800)
    await producer(
        patient("p-1", "Rex", date_of_birth=born, weight_kg=21.0, breed="Collie"), clinic_a, client_a
    )
    await producer(patient("p-2", "Bella"), clinic_a, client_a)
    await producer(patient("p-3", "Gone"), clinic_a, client_a)
    await producer(PatientRemoved(patient_id="p-3", reason="deleted_in_pims"), clinic_a, client_a)
    await producer(patient("p-1", "Zed"), clinic_b, client_b)  # the same PIMS id at the other clinic
    await producer(patient("p-9", "Not yours"), clinic_a, other)

    def appointment(
        appointment_id: str, patient_id: str | None, hours: float, **kw: Any
    ) -> AppointmentUpserted:
        return AppointmentUpserted(
            appointment_id=appointment_id, patient_id=patient_id, starts_at=now + timedelta(hours=hours), **kw
        )

    for event, clinic_id, client_id in [
        (appointment("a-1", "p-1", 48, reason="Vaccines"), clinic_a, client_a),
        (appointment("a-2", "p-2", 24, appointment_type="Euthanasia"), clinic_a, client_a),  # hidden
        (appointment("a-3", None, 72, appointment_type="Exam"), clinic_a, client_a),  # no pet in particular
        (appointment("a-4", "p-1", -240), clinic_a, client_a),  # past
        (appointment("a-5", "p-3", 30), clinic_a, client_a),  # of the removed pet
        (appointment("a-6", "p-9", 10), clinic_a, other),  # another parent's
        (appointment("a-7", "p-2", 12), clinic_a, client_a),
        (AppointmentCancelled(appointment_id="a-7", patient_id="p-2"), clinic_a, client_a),
        (appointment("b-1", "p-1", 5, provider="Dr Ng"), clinic_b, client_b),
    ]:
        await producer(event, clinic_id, client_id)
    mine = signing_key.parent_headers(clinic_a, client_a, clients=((clinic_b, client_b),))

    async def lists() -> tuple[dict[str, Any], dict[str, Any]]:
        listed = (await http.get("/api/v1/pets", headers=mine)).json()
        upcoming = (await http.get("/api/v1/appointments", headers=mine)).json()
        return listed, upcoming

    def settled(found: tuple[dict[str, Any], dict[str, Any]]) -> bool:
        listed, upcoming = found
        return [p["name"] for p in listed["pets"]] == ["Bella", "Rex", "Zed"] and [
            (a["appointment_id"], a["timezone"]) for a in upcoming["appointments"]
        ] == [("b-1", "UTC"), ("a-1", "America/Chicago"), ("a-3", "America/Chicago")]

    await eventually(lists, settled)
    upload = io.BytesIO()
    Image.new("RGB", (64, 64), "orange").save(upload, format="JPEG")
    bella = f"/api/v1/pets/p-2/photo?clinic_id={clinic_a}"
    put = await http.put(bella, content=upload.getvalue(), headers={**mine, "content-type": "image/jpeg"})
    assert put.status_code == 204, put.text
    listed, upcoming = await lists()

    overview = await http.get("/api/v1/pets-overview", headers=mine)

    assert overview.status_code == 200
    assert overview.headers["content-type"] == "application/json"
    assert overview.json() == {"pets": listed["pets"], "appointments": upcoming["appointments"]}
    rex = overview.json()["pets"][1]
    assert (rex["clinic_name"], rex["weight_kg"], rex["age"]["years"]) == ("Maple Vets", 21.0, 2)
    assert overview.json()["pets"][0]["photo_url"] == bella
    assert overview.json()["appointments"][1]["local_start"].endswith(("-05:00", "-06:00"))
    # Only the parent's own: another parent of the same clinic, and one with no pets, see nothing.
    for someone_else in (headers(signing_key, clinic_a, "intruder"), headers(signing_key, clinic_b, other)):
        answer = await http.get("/api/v1/pets-overview", headers=someone_else)
        assert answer.json() == {"pets": [], "appointments": []}
    theirs = await http.get("/api/v1/pets-overview", headers=headers(signing_key, clinic_a, other))
    assert [p["name"] for p in theirs.json()["pets"]] == ["Not yours"]
    assert [a["appointment_id"] for a in theirs.json()["appointments"]] == ["a-6"]
    assert (await http.get("/api/v1/pets-overview")).status_code == 401

    # Its pooled connections are handed out unpinged: one the server closed meanwhile (a restart, a
    # dropped connection) costs the read a second try on a new connection, not the parent an error.
    async with runtime.transaction() as session:
        closed = await session.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        assert closed.scalar_one() >= 1
    again = await http.get("/api/v1/pets-overview", headers=mine)
    assert (again.status_code, again.json()) == (200, overview.json())


async def test_a_photo_is_uploaded_replaced_and_removed_without_its_gps_and_never_published(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter
) -> None:
    from PIL import Image

    http, runtime = pets
    clinic_id, client_id = f"clinic-{uuid.uuid4().hex[:6]}", f"client-{uuid.uuid4().hex[:8]}"
    await producer(patient("p-1", "Rex"), clinic_id, client_id)
    mine = headers(signing_key, clinic_id, client_id)
    await eventually(lambda: http.get("/api/v1/pets/p-1", headers=mine), lambda r: r.status_code == 200)
    assert (await http.get("/api/v1/pets/p-1/photo", headers=mine)).status_code == 404

    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}
    upload = io.BytesIO()
    Image.new("RGB", (900, 600), "orange").save(upload, format="JPEG", exif=exif)
    put = await http.put(
        "/api/v1/pets/p-1/photo", content=upload.getvalue(), headers={**mine, "content-type": "image/jpeg"}
    )
    assert put.status_code == 204, put.text
    got = await http.get("/api/v1/pets/p-1/photo", headers=mine)
    assert got.headers["content-type"] == "image/jpeg"
    assert dict(Image.open(io.BytesIO(got.content)).getexif()) == {}
    again = await http.get("/api/v1/pets/p-1/photo", headers={**mine, "if-none-match": got.headers["etag"]})
    assert again.status_code == 304
    thumb = await http.get("/api/v1/pets/p-1/photo?size=thumbnail", headers=mine)
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    [listed] = (await http.get("/api/v1/pets", headers=mine)).json()["pets"]
    assert listed["photo_url"] == f"/api/v1/pets/p-1/photo?clinic_id={clinic_id}"
    # The pet's own page says so too (it did not: the portal showed "Add a photo" after an upload).
    one = (await http.get("/api/v1/pets/p-1", headers=mine)).json()
    assert one["photo_url"] == listed["photo_url"]

    # Bad uploads: refused with the reason, nothing stored; another parent cannot touch it.
    as_text = await http.put(
        "/api/v1/pets/p-1/photo", content=b"hello", headers={**mine, "content-type": "text/plain"}
    )
    assert as_text.status_code == 415
    damaged = await http.put(
        "/api/v1/pets/p-1/photo",
        content=upload.getvalue()[:500],
        headers={**mine, "content-type": "image/jpeg"},
    )
    assert damaged.status_code == 422
    assert "damaged" in damaged.json()["detail"]
    intruder = headers(signing_key, clinic_id, "intruder")
    for response in (
        await http.get("/api/v1/pets/p-1/photo", headers=intruder),
        await http.put(
            "/api/v1/pets/p-1/photo",
            content=upload.getvalue(),
            headers={**intruder, "content-type": "image/jpeg"},
        ),
        await http.delete("/api/v1/pets/p-1/photo", headers=intruder),
    ):
        assert response.status_code == 404
    assert (await http.get("/api/v1/pets/p-1/photo", headers=mine)).content == got.content

    # The photo stays in the portal: pets publishes nothing but erasure confirmations (other tests'
    # erasure requests share the session's topics), so no event, and no call to the PIMS, carries it.
    async with runtime.transaction() as session:
        published = text("SELECT count(*) FROM outbox WHERE event_type <> 'ClientDataErased'")
        assert (await session.execute(published)).scalar_one() == 0
    assert (await http.delete("/api/v1/pets/p-1/photo", headers=mine)).status_code == 204
    assert (await http.get("/api/v1/pets/p-1/photo", headers=mine)).status_code == 404


async def test_an_appointment_request_is_answered_by_the_clinic_and_followed_by_the_parent(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter
) -> None:
    http, _ = pets
    clinic_id, client_id = f"clinic-{uuid.uuid4().hex[:6]}", f"client-{uuid.uuid4().hex[:8]}"
    await producer(patient("p-1", "Rex"), clinic_id, client_id)
    await producer(patient("p-9", "Other"), clinic_id, "someone-else")
    mine = headers(signing_key, clinic_id, client_id)
    staff = signing_key.staff_headers(clinic_id)
    await eventually(lambda: http.get("/api/v1/pets/p-1", headers=mine), lambda r: r.status_code == 200)
    soon = datetime.now(UTC) + timedelta(days=2)
    body = {"patient_id": "p-1", "reason": "Limping on the back leg", "preferred_times": [soon.isoformat()]}

    created = await http.post("/api/v1/appointment-requests", json=body, headers=mine)
    assert created.status_code == 201, created.text
    request_id = created.json()["request_id"]
    assert created.json()["status"] == "pending"
    # Another parent's pet, times in the past, no times, too many: refused, nothing stored.
    assert (
        await http.post("/api/v1/appointment-requests", json={**body, "patient_id": "p-9"}, headers=mine)
    ).status_code == 404
    past = {**body, "preferred_times": [(datetime.now(UTC) - timedelta(hours=1)).isoformat()]}
    assert (await http.post("/api/v1/appointment-requests", json=past, headers=mine)).status_code == 409
    assert (
        await http.post("/api/v1/appointment-requests", json={**body, "preferred_times": []}, headers=mine)
    ).status_code == 422
    naive = {**body, "preferred_times": ["2030-01-01T10:00:00"]}
    assert (await http.post("/api/v1/appointment-requests", json=naive, headers=mine)).status_code == 422

    pending = (await http.get("/clinic/v1/appointment-requests?status=pending", headers=staff)).json()[
        "requests"
    ]
    assert [r["request_id"] for r in pending] == [request_id]
    other_clinic = signing_key.staff_headers("another-clinic")
    assert (await http.get("/clinic/v1/appointment-requests", headers=other_clinic)).json()["requests"] == []
    assert (
        await http.post(
            f"/clinic/v1/appointment-requests/{request_id}/answer",
            json={"decision": "accept"},
            headers=other_clinic,
        )
    ).status_code == 404

    at = (soon + timedelta(hours=1)).replace(microsecond=0)
    bad = await http.post(
        f"/clinic/v1/appointment-requests/{request_id}/answer", json={"decision": "accept"}, headers=staff
    )
    assert bad.status_code == 409  # accepting needs a time
    answered = await http.post(
        f"/clinic/v1/appointment-requests/{request_id}/answer",
        json={"decision": "accept", "time": at.isoformat(), "note": "Bring his lead"},
        headers=staff,
    )
    assert answered.status_code == 200, answered.text
    again = await http.post(
        f"/clinic/v1/appointment-requests/{request_id}/answer", json={"decision": "decline"}, headers=staff
    )
    assert again.status_code == 409  # answered once

    [seen] = (await http.get("/api/v1/appointment-requests", headers=mine)).json()["requests"]
    assert (seen["status"], seen["note"]) == ("accepted", "Bring his lead")
    assert datetime.fromisoformat(seen["answer_time"]) == at
    assert (
        await http.post(f"/api/v1/appointment-requests/{request_id}/cancel", headers=mine)
    ).status_code == 409
    assert (
        await http.get(
            "/api/v1/appointment-requests", headers=headers(signing_key, clinic_id, "someone-else")
        )
    ).json()["requests"] == []


async def test_an_erased_clients_data_is_deleted_everywhere_and_a_replay_brings_none_of_it_back(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter, kafka_bootstrap: str
) -> None:
    from PIL import Image

    http, runtime = pets
    tag = uuid.uuid4().hex[:8]
    clinic_id, erased, kept = f"clinic-{tag}", f"erased-{tag}", f"kept-{tag}"
    names = {erased: (f"Rexerased{tag}", f"Gone{tag}"), kept: (f"Bellakept{tag}", f"Kept{tag}")}
    now = datetime.now(UTC)
    today = now.date()
    upload = io.BytesIO()
    Image.new("RGB", (400, 300), "orange").save(upload, format="JPEG")

    async def scalar(sql: str, **params: Any) -> Any:
        async with runtime.transaction() as session:
            return (await session.execute(text(sql), params)).scalar_one()

    # Every table of pets gets rows of both clients: pets (one listed, one gone), the records of every
    # kind, a photo, an appointment request and a refill request; the clinic's own row is the clinic's.
    await producer(ClinicRegistered(name="Maple Vets", pims="avimark", timezone="UTC"), clinic_id, None)
    for client_id, (name, gone) in names.items():
        pet_id = f"p-{client_id}"
        await producer(patient(pet_id, name, microchip="985112345678901"), clinic_id, client_id)
        await producer(patient(f"{pet_id}-2", gone), clinic_id, client_id)
        await producer(
            PatientRemoved(patient_id=f"{pet_id}-2", reason="deleted_in_pims"), clinic_id, client_id
        )
        for record in (
            AppointmentUpserted(
                appointment_id=f"a-{client_id}", patient_id=pet_id, starts_at=now + timedelta(days=2)
            ),
            ServiceReminderUpserted(
                reminder_id=f"r-{client_id}", patient_id=pet_id, service=f"Rabies {name}", due_on=today
            ),
            VaccinationRecorded(
                vaccination_id=f"v-{client_id}", patient_id=pet_id, name="DHPP", given_on=today
            ),
            MedicationPrescribed(
                prescription_id=f"m-{client_id}",
                patient_id=pet_id,
                name="Carprofen",
                refills_remaining=1,
                prescribed_on=today,
            ),
        ):
            await producer(record, clinic_id, client_id)
    await eventually(
        lambda: scalar("SELECT count(*) FROM pet_records WHERE clinic_id = :c", c=clinic_id), lambda n: n == 8
    )
    for client_id, (name, _) in names.items():
        mine = headers(signing_key, clinic_id, client_id)
        await eventually(
            partial(http.get, f"/api/v1/pets/p-{client_id}", headers=mine), lambda r: r.status_code == 200
        )
        photo = await http.put(
            f"/api/v1/pets/p-{client_id}/photo",
            content=upload.getvalue(),
            headers={**mine, "content-type": "image/jpeg"},
        )
        assert photo.status_code == 204, photo.text
        asked = await http.post(
            "/api/v1/appointment-requests",
            json={
                "patient_id": f"p-{client_id}",
                "reason": f"Limping, says {name}'s owner",
                "preferred_times": [(now + timedelta(days=3)).isoformat()],
            },
            headers=mine,
        )
        assert asked.status_code == 201, asked.text
        refill = await http.post(
            "/api/v1/refill-requests",
            json={
                "patient_id": f"p-{client_id}",
                "prescription_id": f"m-{client_id}",
                "note": f"{name} is out of pills",
            },
            headers=mine,
        )
        assert refill.status_code == 201, refill.text
    counts = """SELECT (SELECT count(*) FROM pets WHERE client_id = :k)
        + (SELECT count(*) FROM pet_records WHERE client_id = :k)
        + (SELECT count(*) FROM pet_photos WHERE patient_id = 'p-' || :k)
        + (SELECT count(*) FROM appointment_requests WHERE client_id = :k)
        + (SELECT count(*) FROM refill_requests WHERE client_id = :k)"""
    assert await scalar(counts, k=erased) == await scalar(counts, k=kept) == 2 + 4 + 1 + 1 + 1

    erasure_id = uuid.uuid4()
    request = await producer(ClientErasureRequested(erasure_id=erasure_id), clinic_id, erased)
    await eventually(
        lambda: scalar("SELECT count(*) FROM erased_clients WHERE client_id = :k", k=erased), lambda n: n == 1
    )

    # No row of any table holds the erased client's ids, their pets' names or their request's words;
    # the tombstone (ids only) and the confirmation in the outbox are the only rows about them.
    async with runtime.transaction() as session:
        tables = (
            (
                await session.execute(
                    text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                )
            )
            .scalars()
            .all()
        )
        assert {
            "pets",
            "pet_records",
            "pet_photos",
            "appointment_requests",
            "refill_requests",
            "clinics",
        } <= set(tables)
        for table in sorted(set(tables) - {"erased_clients", "outbox"}):
            rows = (await session.execute(text(f'SELECT t::text FROM "{table}" AS t'))).scalars().all()
            leaked = [row for row in rows if any(word in row for word in (erased, *names[erased]))]
            assert leaked == [], table
        # Of this test's clinic: the topics are the session's, other tests erase clients too.
        tombstone = (
            await session.execute(
                text(
                    "SELECT clinic_id, client_id, erased_at, erasure_id FROM erased_clients"
                    " WHERE clinic_id = :c"
                ),
                {"c": clinic_id},
            )
        ).all()
        outbox = (
            await session.execute(
                text("SELECT key, event_type, value FROM outbox WHERE key LIKE :c ORDER BY id"),
                {"c": f"{clinic_id}:%"},
            )
        ).all()
    # The other client's refill request stays published; the erased client's is gone from the outbox.
    assert [(key, event_type) for key, event_type, _ in outbox if key != f"{clinic_id}:{erased}"] == [
        (f"{clinic_id}:{kept}", "AppointmentRequested"),
        (f"{clinic_id}:{kept}", "RefillRequested"),
    ]
    outbox = [row for row in outbox if row[0] == f"{clinic_id}:{erased}"]
    assert [tuple(row) for row in tombstone] == [(clinic_id, erased, request.occurred_at, erasure_id)]
    [(key, event_type, value)] = outbox
    assert (key, event_type) == (f"{clinic_id}:{erased}", "ClientDataErased")
    assert Envelope.from_bytes(value).payload == {"erasure_id": str(erasure_id), "service": "pets"}
    assert not any(name.encode() in value for name in names[erased])

    # The other client's rows are all there, and so is the clinic.
    assert await scalar(counts, k=kept) == 9
    assert await scalar("SELECT name FROM clinics WHERE clinic_id = :c", c=clinic_id) == "Maple Vets"
    kept_pets = await http.get("/api/v1/pets", headers=headers(signing_key, clinic_id, kept))
    assert [p["name"] for p in kept_pets.json()["pets"]] == [names[kept][0]]
    theirs = headers(signing_key, clinic_id, erased)
    assert (await http.get("/api/v1/pets", headers=theirs)).json() == {"pets": []}
    assert (await http.get("/api/v1/appointment-requests", headers=theirs)).json() == {"requests": []}
    assert (await http.get("/api/v1/refill-requests", headers=theirs)).json() == {"requests": []}

    # The confirmation reaches the erasure topic.
    [(envelope, confirmed, _)] = await read_events(
        kafka_bootstrap, topics.ERASURE, clinic_id=clinic_id, event_type="ClientDataErased"
    )
    assert isinstance(confirmed, ClientDataErased)
    assert (envelope.client_id, envelope.producer, confirmed.erasure_id, confirmed.service) == (
        erased,
        "pets",
        erasure_id,
        "pets",
    )

    # A replay of the events that made the data (new ids, occurred before the erasure) creates
    # nothing; an event after the erasure, behind them on the same partition, is applied.
    before = request.occurred_at - timedelta(minutes=5)
    replayed = [
        await producer(patient(f"p-{erased}", names[erased][0]), clinic_id, erased, occurred_at=before),
        await producer(
            VaccinationRecorded(
                vaccination_id=f"v-{erased}", patient_id=f"p-{erased}", name="DHPP", given_on=today
            ),
            clinic_id,
            erased,
            occurred_at=before,
        ),
    ]
    await producer(patient("p-new", f"New{tag}"), clinic_id, erased)

    async def listed() -> list[str]:
        return [p["name"] for p in (await http.get("/api/v1/pets", headers=theirs)).json()["pets"]]

    assert await eventually(listed, lambda n: n != []) == [f"New{tag}"]
    assert await scalar("SELECT count(*) FROM pet_records WHERE client_id = :k", k=erased) == 0
    refused = "SELECT count(*) FROM inbox WHERE event_id = ANY(:ids)"
    assert await scalar(refused, ids=[e.event_id for e in replayed]) == 0


async def _outbox(runtime: Any, clinic_id: str) -> list[tuple[str, Event]]:
    """(key, event) of what pets staged in its outbox about this clinic's clients, in order."""
    async with runtime.transaction() as session:
        rows = (
            await session.execute(
                text("SELECT key, value FROM outbox WHERE key LIKE :c ORDER BY id"), {"c": f"{clinic_id}:%"}
            )
        ).all()
    return [(key, Envelope.from_bytes(value).event()) for key, value in rows]


async def test_the_answer_to_an_appointment_request_is_published_once_and_seen_once(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter, kafka_bootstrap: str
) -> None:
    http, runtime = pets
    clinic_id, client_id = f"clinic-{uuid.uuid4().hex[:6]}", f"client-{uuid.uuid4().hex[:8]}"
    await producer(patient("p-1", "Rex"), clinic_id, client_id)
    mine = headers(signing_key, clinic_id, client_id)
    staff = signing_key.staff_headers(clinic_id)
    await eventually(lambda: http.get("/api/v1/pets/p-1", headers=mine), lambda r: r.status_code == 200)
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    body = {"patient_id": "p-1", "reason": "Itchy ears", "preferred_times": [soon.isoformat()]}
    created = await http.post("/api/v1/appointment-requests", json=body, headers=mine)
    assert created.status_code == 201, created.text
    request_id = created.json()["request_id"]
    assert created.json()["seen_at"] is None
    seen_url = f"/api/v1/appointment-requests/{request_id}/seen"

    # Nothing to see before the clinic answers; asking publishes the request for the PIMS (sync's
    # outbound queue) without the parent's words.
    not_yet = await http.post(seen_url, headers=mine)
    assert not_yet.status_code == 409
    assert "not answered" in not_yet.json()["detail"]
    [(_, asked)] = await _outbox(runtime, clinic_id)
    assert isinstance(asked, AppointmentRequested)
    assert (str(asked.request_id), asked.preferred_times) == (request_id, [soon])
    assert "Itchy" not in asked.model_dump_json()

    answered = await http.post(
        f"/clinic/v1/appointment-requests/{request_id}/answer",
        json={"decision": "propose", "time": soon.isoformat(), "note": "Tuesday instead?"},
        headers=staff,
    )
    assert answered.status_code == 200, answered.text
    [_, (key, event)] = await _outbox(runtime, clinic_id)
    assert key == f"{clinic_id}:{client_id}"
    assert isinstance(event, AppointmentRequestAnswered)
    assert (str(event.request_id), event.patient_id, event.outcome, event.appointment_at) == (
        request_id,
        "p-1",
        "proposed",
        soon,
    )
    assert "Tuesday" not in event.model_dump_json()  # the clinic's note stays in pets

    # Another parent's, an unknown and a malformed request: 404, 404, 422.
    someone_else = headers(signing_key, clinic_id, "someone-else")
    assert (await http.post(seen_url, headers=someone_else)).status_code == 404
    assert (
        await http.post(f"/api/v1/appointment-requests/{uuid.uuid4()}/seen", headers=mine)
    ).status_code == 404
    assert (await http.post("/api/v1/appointment-requests/nope/seen", headers=mine)).status_code == 422
    assert (await http.post(seen_url, headers=staff)).status_code == 403
    assert (await http.post(seen_url)).status_code == 401

    # Seen twice: 204 both times, one event; the request says when.
    for _ in range(2):
        response = await http.post(seen_url, headers=mine)
        assert response.status_code == 204, response.text
        assert response.content == b""
    [listed] = (await http.get("/api/v1/appointment-requests", headers=mine)).json()["requests"]
    assert listed["seen_at"] is not None
    published = (await _outbox(runtime, clinic_id))[1:]
    assert [type(e).__name__ for _, e in published] == ["AppointmentRequestAnswered", "RequestAnswerSeen"]
    seen = published[1][1]
    assert isinstance(seen, RequestAnswerSeen)
    assert (str(seen.request_id), seen.kind, seen.seen_at) == (
        request_id,
        "appointment",
        datetime.fromisoformat(listed["seen_at"]),
    )

    # The relay takes them to the pets topic.
    found = await read_events(kafka_bootstrap, topics.PETS, clinic_id=clinic_id, count=3)
    assert [(e.event_type, e.producer, e.client_id) for e, _, _ in found] == [
        ("AppointmentRequested", "pets", client_id),
        ("AppointmentRequestAnswered", "pets", client_id),
        ("RequestAnswerSeen", "pets", client_id),
    ]


async def test_a_refill_request_is_asked_for_a_current_prescription_decided_once_and_seen_once(
    pets: tuple[httpx.AsyncClient, Any], producer: Any, signing_key: TokenMinter
) -> None:
    http, runtime = pets
    tag = uuid.uuid4().hex[:6]
    clinic_id, client_id, other = f"clinic-{tag}", f"client-{tag}", f"other-{tag}"
    other_clinic = f"clinic-b-{tag}"
    today = datetime.now(UTC).date()
    await producer(patient("p-1", "Rex"), clinic_id, client_id)
    await producer(patient("p-9", "Secretpet"), clinic_id, other)
    # The parent is a client of a second clinic too, with a pet there.
    await producer(patient("p-b", "Bella"), other_clinic, client_id)

    def medication(prescription_id: str, patient_id: str, **kw: Any) -> MedicationPrescribed:
        values: dict[str, Any] = {
            "name": f"Med {prescription_id}",
            "refills_remaining": 2,
            "prescribed_on": today - timedelta(days=30),
        }
        return MedicationPrescribed(prescription_id=prescription_id, patient_id=patient_id, **(values | kw))

    for event, clinic, client in (
        (medication("m-1", "p-1", name="Carprofen 50 mg"), clinic_id, client_id),
        (medication("m-0", "p-1", refills_remaining=0), clinic_id, client_id),
        (medication("m-old", "p-1", expires_on=today - timedelta(days=1)), clinic_id, client_id),
        (medication("m-off", "p-1", active=False), clinic_id, client_id),
        (medication("m-9", "p-9", name="Secretmed"), clinic_id, other),
        (medication("m-b", "p-b"), other_clinic, client_id),
    ):
        await producer(event, clinic, client)
    mine = signing_key.parent_headers(
        clinic_id, client_id, clients=((clinic_id, client_id), (other_clinic, client_id))
    )
    theirs = headers(signing_key, clinic_id, other)
    staff = signing_key.staff_headers(clinic_id)

    async def records() -> int:
        async with runtime.transaction() as session:
            return int(
                (
                    await session.execute(
                        text(
                            "SELECT count(*) FROM pet_records"
                            " WHERE kind = 'medication' AND clinic_id = ANY(:c)"
                        ),
                        {"c": [clinic_id, other_clinic]},
                    )
                ).scalar_one()
            )

    await eventually(records, lambda n: n == 6)
    await eventually(lambda: http.get("/api/v1/pets/p-1", headers=mine), lambda r: r.status_code == 200)

    url = "/api/v1/refill-requests"
    body = {"patient_id": "p-1", "prescription_id": "m-1", "note": "Running low"}
    assert (await http.get(url, headers=mine)).json() == {"requests": []}

    created = await http.post(url, json=body, headers=mine)
    assert created.status_code == 201, created.text
    request = created.json()
    request_id = request["request_id"]
    assert {k: request[k] for k in ("patient_id", "prescription_id", "medication_name", "parent_note")} == {
        "patient_id": "p-1",
        "prescription_id": "m-1",
        "medication_name": "Carprofen 50 mg",
        "parent_note": "Running low",
    }
    assert (request["status"], request["clinic_note"], request["decided_at"], request["seen_at"]) == (
        "pending",
        None,
        None,
        None,
    )

    # Refused, naming the field; another client's pet or prescription looks like a missing one.
    async def refused(json: Any, status: int, field: str | None, auth: dict[str, str] = mine) -> Any:
        response = await http.post(url, json=json, headers=auth)
        assert response.status_code == status, (json, response.text)
        assert "Secret" not in response.text
        if field is not None:
            assert response.json()["field"] == field, response.text
        return response.json()

    theirs_pet = await refused({**body, "patient_id": "p-9"}, 404, "patient_id")
    missing_pet = await refused({**body, "patient_id": "p-x"}, 404, "patient_id")
    assert (theirs_pet["detail"], missing_pet["detail"]) == ("no pet p-9", "no pet p-x")
    await refused({**body, "prescription_id": "m-9"}, 404, "prescription_id")  # another client's pet's
    await refused({**body, "prescription_id": "m-b"}, 404, "prescription_id")  # another of their pets'
    await refused({**body, "prescription_id": "m-nope"}, 404, "prescription_id")
    # The pet is theirs at another clinic than the one the token acts at.
    await refused({"patient_id": "p-b", "prescription_id": "m-b"}, 404, "patient_id")
    assert (
        "no refills left"
        in (await refused({**body, "prescription_id": "m-0"}, 409, "prescription_id"))["detail"]
    )
    for stale in ("m-old", "m-off"):
        assert (
            "no longer current"
            in (await refused({**body, "prescription_id": stale}, 409, "prescription_id"))["detail"]
        )
    assert "already pending" in (await refused(body, 409, "prescription_id"))["detail"]
    # Malformed bodies: 422 with the field, never a 500.
    for bad, loc in (
        ({**body, "extra": 1}, ["body", "extra"]),
        ({**body, "note": "x" * 501}, ["body", "note"]),
        ({**body, "note": "nul\u0000"}, ["body", "note"]),
        ({**body, "patient_id": "p 1"}, ["body", "patient_id"]),
        ({"patient_id": "p-1"}, ["body", "prescription_id"]),
        ({**body, "note": 5}, ["body", "note"]),
    ):
        detail = await refused(bad, 422, None)
        assert [e["loc"] for e in detail["detail"]] == [loc], bad
    surrogate = await http.post(
        url,
        content=b'{"patient_id": "p-1", "prescription_id": "m-1", "note": "\\ud800"}',
        headers={**mine, "content-type": "application/json"},
    )
    assert surrogate.status_code == 422
    assert (await http.post(url, json=body)).status_code == 401
    assert (await http.post(url, json=body, headers=staff)).status_code == 403

    # The clinic: its pending requests only; another clinic sees none and cannot decide.
    clinic_url = "/clinic/v1/refill-requests"
    pending = (await http.get(f"{clinic_url}?status=pending", headers=staff)).json()["requests"]
    assert [(r["request_id"], r["client_id"], r["parent_note"]) for r in pending] == [
        (request_id, client_id, "Running low")
    ]
    assert (await http.get(f"{clinic_url}?status=approved", headers=staff)).json() == {"requests": []}
    assert (await http.get(f"{clinic_url}?status=nope", headers=staff)).status_code == 422
    assert (await http.get(clinic_url, headers=mine)).status_code == 403
    elsewhere = signing_key.staff_headers(f"another-{tag}")
    assert (await http.get(clinic_url, headers=elsewhere)).json() == {"requests": []}
    decide = f"{clinic_url}/{request_id}/decision"
    unknown = await http.post(
        f"{clinic_url}/{uuid.uuid4()}/decision", json={"decision": "approve"}, headers=staff
    )
    assert (unknown.status_code, unknown.json()["field"]) == (404, "request_id")
    assert (await http.post(decide, json={"decision": "approve"}, headers=elsewhere)).status_code == 404

    # Nothing to see before the decision.
    seen_url = f"{url}/{request_id}/seen"
    early = await http.post(seen_url, headers=mine)
    assert (early.status_code, early.json()["field"]) == (409, "request_id")

    for bad, loc in (
        ({"decision": "deny"}, ["body", "note"]),  # a denial says why
        ({"decision": "deny", "note": "   "}, ["body", "note"]),
        ({"decision": "maybe"}, ["body", "decision"]),
        ({"decision": "deny", "note": "x" * 501}, ["body", "note"]),
        ({"decision": "approve", "extra": True}, ["body", "extra"]),
        ({"decision": "deny", "note": "a\u0000"}, ["body", "note"]),
    ):
        response = await http.post(decide, json=bad, headers=staff)
        assert response.status_code == 422, response.text
        assert [e["loc"] for e in response.json()["detail"]] == [loc]
    assert (await http.post(decide, json={"decision": "approve"}, headers=mine)).status_code == 403
    assert (
        await http.post(f"{clinic_url}/nope/decision", json={"decision": "approve"}, headers=staff)
    ).status_code == 422

    denied = await http.post(
        decide, json={"decision": "deny", "note": "Needs a check-up first"}, headers=staff
    )
    assert denied.status_code == 200, denied.text
    assert (denied.json()["status"], denied.json()["clinic_note"]) == ("denied", "Needs a check-up first")
    again = await http.post(decide, json={"decision": "approve"}, headers=staff)
    assert (again.status_code, again.json()["field"]) == (409, "request_id")
    assert (await http.get(f"{clinic_url}?status=pending", headers=staff)).json() == {"requests": []}

    # The parent sees the decision with the clinic's note; another parent cannot mark it seen.
    for auth in (theirs, headers(signing_key, other_clinic, client_id)):
        response = await http.post(seen_url, headers=auth)
        assert (response.status_code, response.json()["field"]) == (404, "request_id")
    assert (await http.post(f"{url}/{uuid.uuid4()}/seen", headers=mine)).status_code == 404
    assert (await http.post(f"{url}/nope/seen", headers=mine)).status_code == 422
    for _ in range(2):
        response = await http.post(seen_url, headers=mine)
        assert response.status_code == 204, response.text
    [listed] = (await http.get(url, headers=mine)).json()["requests"]
    assert (listed["status"], listed["clinic_note"], listed["medication_name"]) == (
        "denied",
        "Needs a check-up first",
        "Carprofen 50 mg",
    )
    assert listed["decided_at"] is not None
    assert listed["seen_at"] is not None
    assert (await http.get(url, headers=theirs)).json() == {"requests": []}

    # Decided, it can be asked again (newest first), and approved.
    second = await http.post(url, json={"patient_id": "p-1", "prescription_id": "m-1"}, headers=mine)
    assert second.status_code == 201, second.text
    approved = await http.post(
        f"{clinic_url}/{second.json()['request_id']}/decision", json={"decision": "approve"}, headers=staff
    )
    assert (approved.status_code, approved.json()["status"], approved.json()["clinic_note"]) == (
        200,
        "approved",
        None,
    )
    listed_ids = [r["request_id"] for r in (await http.get(url, headers=mine)).json()["requests"]]
    assert listed_ids == [second.json()["request_id"], request_id]

    # Each step published once, keyed to the client, none of the notes.
    published = await _outbox(runtime, clinic_id)
    assert {key for key, _ in published} == {f"{clinic_id}:{client_id}"}
    first = [e for _, e in published if str(getattr(e, "request_id", "")) == request_id]
    assert [type(e).__name__ for e in first] == [
        "RefillRequested",
        "RefillRequestDecided",
        "RequestAnswerSeen",
    ]
    asked, decided, seen = first
    assert isinstance(asked, RefillRequested)
    assert (asked.patient_id, asked.prescription_id) == ("p-1", "m-1")
    assert isinstance(decided, RefillRequestDecided)
    assert (decided.outcome, decided.prescription_id) == ("denied", "m-1")
    assert isinstance(seen, RequestAnswerSeen)
    assert (seen.kind, seen.seen_at) == ("refill", datetime.fromisoformat(listed["seen_at"]))
    assert [type(e).__name__ for _, e in published[3:]] == ["RefillRequested", "RefillRequestDecided"]
    assert not any(word in e.model_dump_json() for _, e in published for word in ("Running", "check-up"))
