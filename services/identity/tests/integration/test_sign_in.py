"""Passwordless sign-in against a real PostgreSQL and Kafka: codes by email and by phone (in another
format than stored), one person at two clinics, enumeration-safe answers, the lock after five wrong
codes, single-use links, refresh-token rotation with reuse detection, sign-out everywhere.

Codes are handed to a recorder in place of notify; what it receives is checked against notify's own
OpenAPI (the request schema of `POST /internal/v1/deliveries`)."""

from __future__ import annotations

import asyncio
import io
import uuid

import jwt
import pytest
import zxingcpp
from aiokafka import AIOKafkaProducer
from PIL import Image

from petportal_devkit.testing import eventually
from petportal_identity.domain.model import StaffUser
from petportal_identity.entrypoints.app import SENT
from petportal_runtime.internal import internal_headers
from petportal_schemas import ClientRemoved, Envelope

from .conftest import Harness

pytestmark = pytest.mark.integration


async def test_an_email_on_two_clinics_signs_in_once_and_sees_both(harness: Harness) -> None:
    h = harness
    challenge, code = await h.code_for(await h.start(f"  {h.email.title()} "))
    [sent] = h.outbox.sent
    assert (sent["channel"], sent["clinic_id"]) == ("email", min(h.clinic_a, h.clinic_b))
    assert sent["params"]["link"].startswith("https://portal.example.com/sign-in/link#token=")
    response = await h.verify(challenge, code)
    assert response.status_code == 200, response.text
    session = response.json()
    assert sorted(c["clinic_id"] for c in session["clients"]) == sorted([h.clinic_a, h.clinic_b])
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["role"] == "parent"
    assert {(c["clinic_id"], c["client_id"]) for c in claims["clients"]} == {
        (h.clinic_a, "A-1"),
        (h.clinic_b, "B-7"),
    }
    # The same code again: spent.
    assert (await h.verify(challenge, code)).status_code == 400


async def test_a_phone_number_in_another_format_than_stored(harness: Harness) -> None:
    h = harness
    national = f"({h.phone[2:5]}) {h.phone[5:8]}-{h.phone[8:]}"
    challenge, code = await h.code_for(await h.start(national))
    assert h.outbox.sent[-1]["channel"] == "sms"
    session = (await h.verify(challenge, code)).json()
    assert [c["clinic_id"] for c in session["clients"]] == [h.clinic_a]


async def test_known_and_unknown_identifiers_get_the_same_answer(harness: Harness) -> None:
    h = harness
    known = await h.start(h.email)
    unknown = await h.start("nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json().keys() == unknown.json().keys()
    assert known.json()["message"] == unknown.json()["message"] == SENT
    await asyncio.sleep(0)
    assert len(h.outbox.sent) == 1  # only the known one was sent anything
    # No code ever works for the unknown one, and it answers like a wrong code.
    assert (await h.verify(unknown.json()["challenge_id"], "000000")).status_code == 400
    assert (await h.verify(str(uuid.uuid4()), "000000")).status_code == 400
    # Malformed identifiers are refused as such.
    for bad in ("not an identifier", "12", "a@b", "+1 000"):
        assert (await h.start(bad)).status_code == 422, bad


async def test_five_wrong_codes_lock_the_challenge(harness: Harness) -> None:
    h = harness
    challenge, code = await h.code_for(await h.start(h.email))
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = [(await h.verify(challenge, wrong)).status_code for _ in range(5)]
    assert answers == [400, 400, 400, 400, 429]
    assert (await h.verify(challenge, code)).status_code == 429  # locked, even with the right code


async def test_requests_are_limited_per_identifier(harness: Harness) -> None:
    h = harness
    answers = [(await h.start(h.phone)).status_code for _ in range(6)]
    assert answers == [202] * 5 + [429]


async def test_the_magic_link_signs_in_once(harness: Harness) -> None:
    h = harness
    await h.code_for(await h.start(h.email, clinic_id=h.clinic_b))
    token = h.outbox.sent[-1]["params"]["link"].split("#token=")[1]
    first = await h.http.post("/api/v1/auth/sign-in/link", json={"token": token})
    assert first.status_code == 200, first.text
    assert [c["clinic_id"] for c in first.json()["clients"]] == [h.clinic_b]  # the clinic's own link
    again = await h.http.post("/api/v1/auth/sign-in/link", json={"token": token})
    assert again.status_code == 400


async def test_refresh_rotates_and_a_reused_token_ends_the_session(harness: Harness) -> None:
    h = harness
    challenge, code = await h.code_for(await h.start(h.email))
    first = (await h.verify(challenge, code)).json()
    other = h.clinic_b if first["clinic_id"] == h.clinic_a else h.clinic_a
    second = await h.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"], "clinic_id": other}
    )
    assert second.status_code == 200, second.text
    assert second.json()["clinic_id"] == other
    assert second.json()["refresh_token"] != first["refresh_token"]
    # The spent token presented again (a thief's copy): refused, and the whole family is revoked.
    reused = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    after = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert after.status_code == 401


async def test_sign_out_and_sign_out_everywhere(harness: Harness) -> None:
    h = harness
    sessions = []
    for _ in range(2):  # two devices
        challenge, code = await h.code_for(await h.start(h.email))
        sessions.append((await h.verify(challenge, code)).json())
    out = await h.http.post("/api/v1/auth/sign-out", json={"refresh_token": sessions[0]["refresh_token"]})
    assert out.status_code == 204
    assert (
        await h.http.post("/api/v1/auth/refresh", json={"refresh_token": sessions[0]["refresh_token"]})
    ).status_code == 401
    everywhere = await h.http.post(
        "/api/v1/auth/sign-out-everywhere", headers={"authorization": f"Bearer {sessions[1]['access_token']}"}
    )
    assert everywhere.status_code == 204
    assert (
        await h.http.post("/api/v1/auth/refresh", json={"refresh_token": sessions[1]["refresh_token"]})
    ).status_code == 401


async def test_a_clinic_the_person_is_not_a_client_of_is_refused(harness: Harness) -> None:
    h = harness
    challenge, code = await h.code_for(await h.start(h.phone))
    response = await h.verify(challenge, code, clinic_id=h.clinic_b)  # the phone is only on clinic A's record
    assert response.status_code == 403


async def test_staff_get_their_clinics_sign_in_link_and_its_qr_code(harness: Harness) -> None:
    h = harness
    staff = h.identity.tokens.staff(
        StaffUser(clinic_id=h.clinic_a, email="front@desk.example", password_hash="-")
    )
    headers = {"authorization": f"Bearer {staff.access_token}"}
    link = await h.http.get("/clinic/v1/sign-in-link", headers=headers)
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert url == f"https://portal.example.com/c/{h.clinic_a}"
    png = await h.http.get("/clinic/v1/sign-in-link/qr.png", headers=headers)
    assert png.headers["content-type"] == "image/png"
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert decoded.text == url
    svg = await h.http.get("/clinic/v1/sign-in-link/qr.svg", headers=headers)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<?xml")
    # Rendered and decoded again: the SVG holds the same link.
    png_of_svg = segno_svg_to_png(svg.content)
    assert [r.text for r in zxingcpp.read_barcodes(png_of_svg)] == [url]
    assert (await h.http.get("/clinic/v1/sign-in-link/qr.gif", headers=headers)).status_code == 422
    parent = (await h.verify(*await h.code_for(await h.start(h.email)))).json()["access_token"]
    refused = await h.http.get("/clinic/v1/sign-in-link", headers={"authorization": f"Bearer {parent}"})
    assert refused.status_code == 403


def segno_svg_to_png(svg: bytes) -> Image.Image:
    """Draw the SVG's one path (moves and horizontal strokes, as segno writes it) onto an image, so a
    QR decoder can read what the SVG shows."""
    import re

    text = svg.decode()
    scale = float(re.search(r"scale\(([\d.]+)\)", text).group(1))  # type: ignore[union-attr]
    width = int(float(re.search(r'width="([\d.]+)"', text).group(1)))  # type: ignore[union-attr]
    path = re.search(r' d="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    image = Image.new("L", (width, width), 255)
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHhVv])(-?[\d.]+)(?:\s+(-?[\d.]+))?", path):
        if command in "Mm":
            dx, dy = float(a), float(b or 0)
            x, y = (dx, dy) if command == "M" else (x + dx, y + dy)
        elif command in "Hh":
            end = float(a) if command == "H" else x + float(a)
            box = (
                int(min(x, end) * scale),
                int((y - 0.5) * scale),
                int(max(x, end) * scale),
                int((y + 0.5) * scale),
            )
            image.paste(0, box)
            x = end
        else:
            y = float(a) if command == "V" else y + float(a)
    return image


async def test_a_contact_the_pims_removed_no_longer_signs_in_and_loses_its_session(
    harness: Harness, kafka_bootstrap: str
) -> None:
    h = harness
    challenge, code = await h.code_for(await h.start(h.phone))  # only on clinic A's record
    session = (await h.verify(challenge, code)).json()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        removed = Envelope.wrap(
            ClientRemoved(reason="deleted_in_pims"), clinic_id=h.clinic_a, client_id="A-1", producer="sync"
        )
        await producer.send_and_wait(removed.topic, removed.to_bytes(), key=removed.key.encode())
    finally:
        await producer.stop()

    async def ended() -> bool:
        answer = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
        return answer.status_code == 401

    assert await eventually(ended)
    sent = len(h.outbox.sent)
    await h.start(h.phone)
    await asyncio.sleep(0)
    assert len(h.outbox.sent) == sent  # nobody to send a code to any more


async def test_a_reminder_link_is_for_services_only_signs_in_once_then_prefills(harness: Harness) -> None:
    h = harness
    body = {
        "clients": [
            {"clinic_id": h.clinic_b, "client_id": "B-7"},
            {"clinic_id": h.clinic_b, "client_id": "nobody"},
        ]
    }
    assert (await h.http.post("/internal/v1/reminder-links", json=body)).status_code == 401
    headers = internal_headers(h.settings)
    created = await h.http.post("/internal/v1/reminder-links", json=body, headers=headers)
    assert created.status_code == 200, created.text
    [known, unknown] = created.json()["links"]
    assert (unknown["client_id"], unknown["url"]) == ("nobody", None)
    url = known["url"]
    assert url.startswith("https://portal.example.com/sign-in/link#token=")
    token = url.split("#token=")[1]
    first = await h.http.post("/api/v1/auth/sign-in/link", json={"token": token})
    assert first.status_code == 200, first.text
    assert first.json()["clients"] == [{"clinic_id": h.clinic_b, "client_id": "B-7"}]  # that client only
    assert (await h.http.post("/api/v1/auth/sign-in/link", json={"token": token})).status_code == 400
    prefill = await h.http.post("/api/v1/auth/sign-in/link/prefill", json={"token": token})
    assert prefill.json() == {"identifier": h.email, "clinic_id": h.clinic_b}
    assert (
        await h.http.post("/api/v1/auth/sign-in/link/prefill", json={"token": "x" * 43})
    ).status_code == 400
