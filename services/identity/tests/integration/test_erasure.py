"""Permanent erasure, identity's part, against a real PostgreSQL and Kafka: the fresh code, the
request going out for every clinic of the person, sessions ended at once, identity's own data
erased by its consumer, completion only when every service has confirmed, the request asked again
while it waits, and the PIMS's older records of the client refused afterwards."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from petportal_devkit.testing import eventually
from petportal_identity.domain.model import Contact, StaffUser
from petportal_identity.service_layer import erasure as erasure_service
from petportal_runtime.catalog import ERASING_SERVICES
from petportal_schemas import ClientDataErased, ClientUpserted, Envelope

from .conftest import Harness

pytestmark = pytest.mark.integration


async def _signed_in(h: Harness) -> dict[str, Any]:
    challenge, code = await h.code_for(await h.start(h.email))
    response = await h.verify(challenge, code)
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


def _bearer(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


async def _erasure_code(h: Harness, session: dict[str, Any]) -> tuple[str, str]:
    h.outbox.sent.clear()
    response = await h.http.post("/api/v1/account/erasure", headers=_bearer(session))
    assert response.status_code == 202, response.text
    await asyncio.sleep(0)
    [sent] = h.outbox.sent
    assert sent["template"] == "erasure_code"
    assert sent["channel"] == "email"
    return response.json()["challenge_id"], sent["params"]["code"]


async def _publish(bootstrap: str, *envelopes: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
    finally:
        await producer.stop()


async def _contact(h: Harness, clinic_id: str, client_id: str) -> Contact | None:
    """identity's copy of the contact (read directly: sign-in requests are rate-limited per identifier)."""
    uow = h.identity.unit_of_work()
    async with uow:
        return await uow.repositories.identity.contact(clinic_id, client_id)


async def test_an_erasure_runs_to_completion_and_old_records_do_not_bring_the_client_back(
    harness: Harness, kafka_bootstrap: str
) -> None:
    h = harness
    session = await _signed_in(h)
    challenge, code = await _erasure_code(h, session)
    confirm = "/api/v1/account/erasure/confirm"

    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert (
        await h.http.post(confirm, json={"challenge_id": challenge, "code": wrong}, headers=_bearer(session))
    ).status_code == 400
    # A sign-in challenge does not confirm an erasure, and malformed bodies are refused as such.
    sign_in_challenge = (await h.start(h.phone)).json()["challenge_id"]
    assert (
        await h.http.post(
            confirm, json={"challenge_id": sign_in_challenge, "code": code}, headers=_bearer(session)
        )
    ).status_code == 400
    for bad in (
        {"challenge_id": challenge},
        {"challenge_id": "x", "code": code},
        {"challenge_id": challenge, "code": "12\x00456"},
    ):
        assert (await h.http.post(confirm, json=bad, headers=_bearer(session))).status_code == 422
    assert (await h.http.post(confirm, json={"challenge_id": challenge, "code": code})).status_code == 401

    started_at = datetime.now(UTC)
    response = await h.http.post(
        confirm, json={"challenge_id": challenge, "code": code}, headers=_bearer(session)
    )
    assert response.status_code == 202, response.text
    erasure = response.json()
    assert erasure["status"] == "pending"
    assert erasure["waiting_for"] == sorted(ERASING_SERVICES)
    # The code is spent, and the person's sessions ended at once.
    assert (
        await h.http.post(confirm, json={"challenge_id": challenge, "code": code}, headers=_bearer(session))
    ).status_code == 400
    refreshed = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 401

    status_url = f"/api/v1/erasures/{erasure['erasure_id']}"

    async def identity_confirmed() -> bool:
        current = (await h.http.get(status_url)).json()
        return "identity" not in current["waiting_for"]

    assert await eventually(identity_confirmed)
    # identity's own data is gone: no contact at either clinic.
    assert await _contact(h, h.clinic_a, "A-1") is None
    assert await _contact(h, h.clinic_b, "B-7") is None

    # Still waiting for the others: asked again (once per client, both clinics).
    assert await erasure_service.ask_again(h.identity.unit_of_work(), after=timedelta(0)) == 2

    others = [s for s in ERASING_SERVICES if s != "identity"]
    confirmations = [
        Envelope.wrap(
            ClientDataErased(erasure_id=uuid.UUID(erasure["erasure_id"]), service=service),
            clinic_id=clinic_id,
            client_id=client_id,
            producer=service,
        )
        for service in others
        for clinic_id, client_id in ((h.clinic_a, "A-1"), (h.clinic_b, "B-7"))
    ]
    await _publish(kafka_bootstrap, *confirmations[:-1])

    async def waiting_for_one() -> bool:
        return (await h.http.get(status_url)).json()["waiting_for"] == [others[-1]]

    assert await eventually(waiting_for_one)
    assert (await h.http.get(status_url)).json()["status"] == "pending"
    await _publish(kafka_bootstrap, confirmations[-1], confirmations[0])  # one twice: no harm

    async def complete() -> bool:
        return (await h.http.get(status_url)).json()["status"] == "complete"

    assert await eventually(complete)
    assert await erasure_service.ask_again(h.identity.unit_of_work(), after=timedelta(0)) == 0

    # The clinic sees that its client erased their portal data (ids only).
    staff = h.identity.tokens.staff(
        StaffUser(clinic_id=h.clinic_a, email="front@desk.example", password_hash="-")
    )
    listed = await h.http.get(
        "/clinic/v1/erasures", headers={"Authorization": f"Bearer {staff.access_token}"}
    )
    assert listed.status_code == 200, listed.text
    [row] = [e for e in listed.json()["erasures"] if e["erasure_id"] == erasure["erasure_id"]]
    assert (row["client_id"], row["status"], row["waiting_for"]) == ("A-1", "complete", [])

    # A record of the client from before the erasure (a replay, a late retry) is refused...
    old = Envelope.wrap(
        ClientUpserted(first_name="Ann", last_name="Lee", email=h.email, phone=None),
        clinic_id=h.clinic_b,
        client_id="B-7",
        producer="sync",
        occurred_at=started_at - timedelta(seconds=1),
    )
    # ...and one the PIMS sends afterwards opens the client again, as a new contact.
    new = Envelope.wrap(
        ClientUpserted(first_name="Ann", last_name="Lee", email=h.email, phone=None),
        clinic_id=h.clinic_a,
        client_id="A-1",
        producer="sync",
    )
    await _publish(kafka_bootstrap, old, new)

    async def back() -> bool:
        return await _contact(h, h.clinic_a, "A-1") is not None

    assert await eventually(back)
    # (The refusal itself is proven deterministically in the runtime's tests; here it is only seen
    # not to have brought B-7 back while A-1 came back.)
    assert await _contact(h, h.clinic_b, "B-7") is None


async def test_an_unknown_erasure_is_404_and_a_malformed_id_422(harness: Harness) -> None:
    h = harness
    assert (await h.http.get(f"/api/v1/erasures/{uuid.uuid4()}")).status_code == 404
    assert (await h.http.get("/api/v1/erasures/not-a-uuid")).status_code == 422
    assert (await h.http.post("/api/v1/account/erasure")).status_code == 401
