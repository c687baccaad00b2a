"""The real gateway under uvicorn, in front of real upstream servers on loopback ports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from petportal_gateway.entrypoints.app import create_app
from petportal_gateway.settings import GatewaySettings
from petportal_runtime.ratelimit import RateLimiter

pytestmark = pytest.mark.integration

TODO = {
    "badge": 1,
    "items": [
        {
            "kind": "unread_messages",
            "title": "You have 1 unread message",
            "count": 1,
            "action": {"href": "/conversation"},
        }
    ],
}
# todo's whole answer: the list and the Get Help Now options (the home screen shows the list).
TODO_ANSWER = {**TODO, "help": {"live_chat": False, "booking_mode": None}}
PETS = {
    "pets": [
        {
            "patient_id": "p-1",
            "clinic_id": "clinic-1",
            "clinic_name": None,
            "name": "Rex",
            "species": "canine",
            "breed": None,
            "sex": None,
            "date_of_birth": None,
            "colour": None,
            "weight_kg": None,
            "microchip": None,
            "age": None,
        }
    ]
}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
async def pets(server: Callable[[Any], AbstractAsyncContextManager[str]]) -> AsyncIterator[Any]:
    from .conftest import recording_upstream

    upstream = recording_upstream(
        "pets",
        {
            "/api/v1/pets": PETS,
            "/api/v1/appointments": {"appointments": []},
            "/api/v1/pets-overview": {**PETS, "appointments": []},
        },
    )
    async with server(upstream.app) as url:
        upstream.url = url
        yield upstream


@pytest.fixture(scope="module")
async def todo(server: Callable[[Any], AbstractAsyncContextManager[str]]) -> AsyncIterator[Any]:
    from .conftest import recording_upstream

    upstream = recording_upstream("todo", {"/api/v1/todo": TODO_ANSWER})
    async with server(upstream.app) as url:
        upstream.url = url
        yield upstream


def _settings(identity: Any, pets: Any, todo: Any, down: int, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "identity_url": identity.url,
        "pets_url": pets.url,
        "todo_url": todo.url,
        "messaging_url": f"http://127.0.0.1:{down}",
        "notify_url": f"http://127.0.0.1:{down}",
        "sync_url": f"http://127.0.0.1:{down}",
        "request_timeout_seconds": 1.0,
        **overrides,
    }
    return GatewaySettings(**values)


@pytest.fixture(scope="module")
async def gateway(
    server: Callable[[Any], AbstractAsyncContextManager[str]],
    identity: Any,
    pets: Any,
    todo: Any,
    unused_port: int,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_settings(identity, pets, todo, unused_port))
    async with server(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(autouse=True)
def _forget_requests(pets: Any, todo: Any) -> None:
    pets.seen.clear()
    todo.seen.clear()


async def test_missing_or_bad_token_is_401_and_the_upstream_is_never_called(
    gateway: httpx.AsyncClient, pets: Any
) -> None:
    missing = await gateway.get("/api/v1/pets")
    forged = await gateway.get("/api/v1/pets", headers={"Authorization": "Bearer not.a.token"})

    assert missing.status_code == 401
    assert forged.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert pets.seen == []


async def test_parent_request_is_forwarded_with_body_query_and_whitelisted_headers(
    gateway: httpx.AsyncClient, pets: Any, keys: Any
) -> None:
    token = keys.parent()
    response = await gateway.post(
        "/api/v1/pets/p-1/notes",
        params={"q": "a b", "tag": ["x", "y"]},
        json={"note": "limping", "n": 1},
        headers={
            "Authorization": f"Bearer {token}",
            "Cookie": "session=secret",
            "X-Forwarded-For": "6.6.6.6",
            "traceparent": TRACEPARENT,
        },
    )

    assert response.status_code == 200
    assert response.json()["service"] == "pets"
    [seen] = pets.seen
    assert seen.method == "POST"
    assert seen.path == "/api/v1/pets/p-1/notes"
    assert seen.query == "q=a+b&tag=x&tag=y"
    assert json.loads(seen.body) == {"note": "limping", "n": 1}
    assert seen.headers["authorization"] == f"Bearer {token}"
    assert seen.headers["content-type"] == "application/json"
    assert "cookie" not in seen.headers
    assert seen.headers["x-forwarded-for"] == "127.0.0.1"  # ours, not the client's claim
    # The same trace continues upstream, under the gateway's own span.
    assert seen.headers["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert seen.headers["traceparent"] != TRACEPARENT


async def test_staff_token_on_a_parent_path_is_403(gateway: httpx.AsyncClient, pets: Any, keys: Any) -> None:
    response = await gateway.get("/api/v1/pets", headers={"Authorization": f"Bearer {keys.staff()}"})
    assert response.status_code == 403
    assert pets.seen == []


async def test_upstream_down_is_503(gateway: httpx.AsyncClient, keys: Any) -> None:
    response = await gateway.get("/api/v1/conversation", headers={"Authorization": f"Bearer {keys.parent()}"})
    assert response.status_code == 503
    assert response.json() == {"detail": "messaging is unavailable"}


async def test_slow_upstream_is_504(gateway: httpx.AsyncClient, keys: Any) -> None:
    response = await gateway.get("/api/v1/pets/slow", headers={"Authorization": f"Bearer {keys.parent()}"})
    assert response.status_code == 504
    assert response.json() == {"detail": "pets timed out"}


async def test_unauthenticated_identity_paths_are_forwarded(
    gateway: httpx.AsyncClient, identity: Any
) -> None:
    response = await gateway.post("/api/v1/auth/dev-token", json={"clinic_id": "c", "client_id": "x"})
    assert response.status_code == 200
    assert response.json()["service"] == "identity"
    assert json.loads(identity.seen[-1].body) == {"clinic_id": "c", "client_id": "x"}


async def test_unknown_path_is_404(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/nowhere")
    assert response.status_code == 404


async def test_home_composes_todo_and_pets(
    gateway: httpx.AsyncClient, pets: Any, todo: Any, keys: Any
) -> None:
    token = keys.parent()
    response = await gateway.get("/api/v1/home", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    body = response.json()
    assert body["todo"] == TODO
    assert body["pets"] == PETS["pets"]
    assert body["upcoming_appointments"] == []
    assert [h["kind"] for h in body["get_help"]] == ["talk_to_staff", "book_appointment"]
    # One call to each: todo's list, and pets' overview (the pets and the appointments together).
    assert [s.path for s in todo.seen + pets.seen] == ["/api/v1/todo", "/api/v1/pets-overview"]
    assert [s.headers["authorization"] for s in todo.seen + pets.seen] == [f"Bearer {token}"] * 2


async def test_home_without_pets_still_shows_todo(
    server: Callable[[Any], AbstractAsyncContextManager[str]],
    identity: Any,
    todo: Any,
    unused_port: int,
    keys: Any,
) -> None:
    pets_down = type("Down", (), {"url": f"http://127.0.0.1:{unused_port}"})()
    app = create_app(_settings(identity, pets_down, todo, unused_port))
    async with server(app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/api/v1/home", headers={"Authorization": f"Bearer {keys.parent()}"})
        todo_down = create_app(_settings(identity, pets_down, pets_down, unused_port))
        async with server(todo_down) as url2, httpx.AsyncClient(base_url=url2) as client2:
            failing = await client2.get("/api/v1/home", headers={"Authorization": f"Bearer {keys.parent()}"})

    assert response.status_code == 200
    assert response.json()["todo"] == TODO
    assert response.json()["pets"] is None
    assert failing.status_code == 503
    assert failing.json() == {"detail": "todo is unavailable"}


async def test_readiness_checks_identity_jwks(
    server: Callable[[Any], AbstractAsyncContextManager[str]],
    gateway: httpx.AsyncClient,
    identity: Any,
    pets: Any,
    todo: Any,
    unused_port: int,
) -> None:
    ready = await gateway.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"identity_jwks": "ok"}

    no_identity = type("Down", (), {"url": f"http://127.0.0.1:{unused_port}"})()
    app = create_app(_settings(no_identity, pets, todo, unused_port))
    async with server(app) as url, httpx.AsyncClient(base_url=url) as client:
        not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["identity_jwks"].startswith("failing")


async def test_rate_limit_per_client_ip_is_429_with_retry_after(
    server: Callable[[Any], AbstractAsyncContextManager[str]],
    identity: Any,
    pets: Any,
    todo: Any,
    unused_port: int,
    keys: Any,
) -> None:
    app = create_app(_settings(identity, pets, todo, unused_port, rate_limit_per_minute=3))
    assert isinstance(app.state.gateway.rate_limiter, RateLimiter)  # the runtime's, as identity's
    auth = {"Authorization": f"Bearer {keys.parent()}"}
    async with server(app) as url, httpx.AsyncClient(base_url=url) as client:
        allowed = [(await client.get("/api/v1/pets", headers=auth)).status_code for _ in range(3)]
        limited = await client.get("/api/v1/pets", headers=auth)
        probe = await client.get("/healthz")

    assert allowed == [200, 200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert len(pets.seen) == 3  # the limited request never reached pets
    assert probe.status_code == 200  # probes are not rate limited


async def test_cors_answers_the_web_origin_only(
    server: Callable[[Any], AbstractAsyncContextManager[str]],
    identity: Any,
    pets: Any,
    todo: Any,
    unused_port: int,
    keys: Any,
) -> None:
    web = "https://portal.example-vets.com"
    settings = _settings(identity, pets, todo, unused_port, cors_allowed_origins=[web])
    async with server(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        allowed = await client.options("/api/v1/pets", headers={"Origin": web, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == web
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers
        refused = await client.options(
            "/api/v1/pets", headers={"Origin": "https://evil.example", **preflight}
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        token = keys.parent()
        read = await client.get("/api/v1/pets", headers={"Origin": web, "Authorization": f"Bearer {token}"})
        assert read.status_code == 200
        assert read.headers["access-control-allow-origin"] == web
        other = await client.get(
            "/api/v1/pets", headers={"Origin": "https://evil.example", "Authorization": f"Bearer {token}"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_cors_origins_must_be_origins() -> None:
    for bad in ("*", "portal.example.com", "https://portal.example.com/app", "ftp://x.example"):
        with pytest.raises(ValueError, match="not an origin"):
            GatewaySettings(environment="test", cors_allowed_origins=[bad])
