"""Every parent-facing route of every service's OpenAPI, walked through the gateway with parent A's
token and parent B's ids: nothing of B's comes back and nothing of B's changes. And every one of those
routes refuses a token that is unsigned (`alg: none`), tampered with, expired or from another issuer."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jwt
import pytest

from petportal_devkit.contracts import OPENAPI_SNAPSHOTS
from petportal_identity.adapters.keystore import DEV_KEY_NAME
from petportal_identity.domain.keys import SigningKey
from petportal_runtime.auth import AUDIENCE, ISSUER

from .stack import Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e

B_SECRETS = ("Zorbobeta", "C-MB", "+14155550177", "secret-for-b", "c-mb@example.com", "R-MB", "V-MB")
# Signing in, out and the development tokens are not about anyone's data (and have their own tests).
# Routes that take no parent token: signing in, and an erasure's progress (keyed by its random id,
# holding no personal data; the parent's sessions end with the erasure).
NOT_DATA = ("/api/v1/auth/", "/api/v1/erasures/")


def parent_routes() -> list[tuple[str, str, str]]:
    """(service, METHOD, path) of every route under /api/ in the committed OpenAPI documents."""
    routes = []
    for document in sorted(OPENAPI_SNAPSHOTS.glob("*.json")):
        for path, operations in json.loads(document.read_text())["paths"].items():
            if not path.startswith("/api/") or path.startswith(NOT_DATA):
                continue
            for method in operations:
                if method in ("get", "post", "put", "patch", "delete"):
                    routes.append((document.stem, method.upper(), path))
    return routes


def records(client_id: str, phone: str, pet: str, pet_name: str, suffix: str) -> list[dict[str, Any]]:
    soon = date.today() + timedelta(days=20)
    return [
        contact(client_id, phone),
        {"kind": "patient", "client_id": client_id, "patient_id": pet, "name": pet_name, "species": "dog"},
        {"kind": "reminder", "client_id": client_id, "reminder_id": f"R-{suffix}", "patient_id": pet,
         "service": "Rabies booster", "due_on": soon.isoformat()},
        {"kind": "vaccination", "client_id": client_id, "vaccination_id": f"V-{suffix}", "patient_id": pet,
         "name": "DHPP", "given_on": "2026-06-01"},
        {"kind": "medication", "client_id": client_id, "prescription_id": f"M-{suffix}", "patient_id": pet,
         "name": "Carprofen", "refills_remaining": 1, "prescribed_on": "2026-11-01"},
        {"kind": "appointment", "client_id": client_id, "appointment_id": f"A-{suffix}", "patient_id": pet,
         "starts_at": f"{soon.isoformat()}T15:30:00Z", "reason": "Exam"},
    ]  # fmt: skip


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


def request_for(method: str, path: str, b_pet: str, b_message: str) -> dict[str, Any]:
    """What parent A sends: B's ids in the path and the body."""
    if path.endswith("/photo") and method == "PUT":
        return {"content": PNG, "headers": {"content-type": "image/png"}}
    bodies: dict[str, Any] = {
        "/api/v1/conversation/read": {"up_to": b_message},
        "/api/v1/conversation/messages": {"body": "hello from A"},
        "/api/v1/notifications/preferences": {"sms_opted_in": True, "email_opted_in": True},
    }
    if method in ("POST", "PUT", "PATCH"):
        return {"json": bodies.get(path, {"name": "taken over", "patient_id": b_pet})}
    return {}


def test_parent_a_gets_nothing_of_parent_bs_on_any_route(stack: Stack) -> None:
    portal = Portal(stack, "e2e-matrix", sms_number="+15005550020")  # a clinic number is one clinic's
    pushed = portal.push(
        *records("C-MA", "+14155550166", "P-MA", "Rexalpha", "MA"),
        *records("C-MB", "+14155550177", "P-MB", "Zorbobeta", "MB"),
    )
    assert pushed["rejected"] == [], pushed
    a = {"authorization": f"Bearer {portal.parent_token('C-MA')}"}
    b = {"authorization": f"Bearer {portal.parent_token('C-MB')}"}
    staff = portal.staff_token()
    assert portal.send_message(staff, "C-MB", "secret-for-b: your results").status_code == 201
    wait_for(lambda: portal.http.get("/api/v1/pets/P-MB/vaccinations", headers=b).status_code == 200 or None,
             what="B's records")  # fmt: skip
    b_conversation = wait_for(
        lambda: (v := portal.http.get("/api/v1/conversation", headers=b).json())["messages"] and v,
        what="B's message",
    )
    b_message = b_conversation["messages"][-1]["message_id"]
    b_before = {p: portal.http.get(p, headers=b).text for p in ("/api/v1/pets/P-MB", "/api/v1/conversation")}

    walked = []
    for service, method, template in parent_routes():
        path = template.replace("{patient_id}", "P-MB")
        sent = request_for(method, template, "P-MB", b_message)
        headers = {**a, **sent.pop("headers", {})}
        response = portal.http.request(method, path, headers=headers, **sent)
        walked.append(f"{method} {template}")
        assert response.status_code < 500, (service, method, path, response.status_code, response.text[:300])
        leaked = [s for s in B_SECRETS if s in response.text]
        assert not leaked, (method, path, response.status_code, leaked)
        if "{patient_id}" in template:
            assert response.status_code in (403, 404, 405), (method, path, response.status_code)
        if template == "/api/v1/conversation/read":
            assert response.status_code == 404, response.text  # B's message is not A's to read
    assert len(walked) >= 20, walked  # every service's parent routes were walked

    # Nothing of B's changed: the pet, the conversation (B's message still unread).
    for path, before in b_before.items():
        assert portal.http.get(path, headers=b).text == before, path


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_every_parent_route_refuses_bad_tokens(stack: Stack) -> None:
    portal = Portal(stack, "e2e-tokens", sms_number="+15005550021")
    assert portal.push(contact("C-T", "+14155550188"))["accepted"] == 1
    good = portal.parent_token("C-T")
    key = SigningKey.from_pem((stack.workdir / "keys" / DEV_KEY_NAME).read_bytes())
    now = datetime.now(UTC)
    claims = {
        "sub": "x",
        "role": "parent",
        "clinic_id": portal.clinic_id,
        "client_id": "C-T",
        "aud": AUDIENCE,
    }

    def signed(**changes: Any) -> str:
        return jwt.encode(
            {**claims, "iss": ISSUER, "iat": now, "exp": now + timedelta(hours=1), **changes},
            key.private_key,
            algorithm="EdDSA",
            headers={"kid": key.kid},
        )

    header, payload, signature = good.split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered_claims["client_id"] = "C-OTHER"
    bad = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "tampered": f"{header}.{_b64(tampered_claims)}.{signature}",
        "expired": signed(iat=now - timedelta(hours=2), exp=now - timedelta(hours=1)),
        "wrong issuer": signed(iss="https://evil.example"),
        "wrong audience": signed(aud="someone-else"),
        "another key": jwt.encode(
            {**claims, "iss": ISSUER, "exp": now + timedelta(hours=1)},
            SigningKey.generate().private_key,
            algorithm="EdDSA",
            headers={"kid": key.kid},
        ),
        "garbage": "not.a.token",
    }
    for _service, method, template in parent_routes():
        path = template.replace("{patient_id}", "P-T")
        for what, token in bad.items():
            response = portal.http.request(method, path, headers={"authorization": f"Bearer {token}"})
            assert response.status_code == 401, (
                what,
                method,
                path,
                response.status_code,
                response.text[:200],
            )
        assert portal.http.request(method, path).status_code == 401, (method, path)
