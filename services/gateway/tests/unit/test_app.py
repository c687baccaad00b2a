"""The gateway app in process, with the network under its upstream client replaced by a fake."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from petportal_devkit.contracts import is_checked, openapi_snapshot, upstream_answer
from petportal_devkit.testing import app_client
from petportal_gateway.adapters.upstreams import (
    AttemptNotConnected,
    AttemptTimeout,
    AttemptUnforwardable,
    UpstreamRequest,
    UpstreamResponse,
)
from petportal_gateway.domain.openapi import forwarded_to, merge
from petportal_gateway.domain.routing import resolve
from petportal_gateway.entrypoints.app import create_app
from petportal_gateway.settings import GatewaySettings
from petportal_runtime.auth import TokenVerifier

pytestmark = pytest.mark.unit

Handler = Callable[["Seen"], UpstreamResponse]


class Seen:
    """A request as it reached an upstream."""

    def __init__(self, request: UpstreamRequest) -> None:
        self.url = httpx.URL(request.url)
        self.method = request.method
        self.headers = dict(request.headers)
        self.content = request.content


def fail(error: Exception) -> Handler:
    def handler(_request: Seen) -> UpstreamResponse:
        raise error

    handler.checked = True  # type: ignore[attr-defined]  (it answers nothing)
    return handler


class FakeNetwork:
    """The upstream client's network (an `UpstreamSend`): answers by upstream host with a per-test handler,
    records what reached each upstream. Every answer is built by `answer`, so it is checked against the
    owning service's OpenAPI snapshot (or says why it breaks it)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.seen: list[Seen] = []

    async def __call__(self, request: UpstreamRequest, _fresh: bool) -> UpstreamResponse:
        seen = Seen(request)
        self.seen.append(seen)
        handler = self.handlers.get(f"{seen.url.host}:{seen.url.port}")
        if handler is None:
            raise AttemptNotConnected("connection refused")
        assert getattr(handler, "checked", False), "build fake upstream answers with answer() or fail()"
        return handler(seen)


def answer(service: str, status: int = 200, **kwargs: Any) -> Handler:
    """A handler answering as `service` does to the request's method and path, checked against its
    OpenAPI snapshot by `upstream_answer`."""

    def handler(seen: Seen) -> UpstreamResponse:
        checked = upstream_answer(service, seen.method, seen.url.path, status, **kwargs)
        assert is_checked(checked)
        return UpstreamResponse(checked.status_code, list(checked.headers.items()), checked.content)

    handler.checked = True  # type: ignore[attr-defined]
    return handler


SETTINGS = GatewaySettings(
    environment="test",
    identity_url="http://identity.test:1",
    pets_url="http://pets.test:2",
    todo_url="http://todo.test:4",
    messaging_url="http://messaging.test:3",
    sync_url="http://sync.test:5",
    rate_limit_per_minute=1000,
)


@pytest.fixture
async def app_and_network(keys: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FakeNetwork]]:
    network = FakeNetwork()
    app = create_app(SETTINGS, send=network)
    app.state.token_verifier = TokenVerifier(None, static_jwks=keys.jwks)
    async with app_client(app, "http://gateway") as client:
        yield client, network


TODO = {
    "badge": 4,
    "items": [
        {
            "kind": "unread_messages",
            "title": "You have 2 unread messages",
            "count": 2,
            "action": {"href": "/conversation"},
        },
        {
            "kind": "form_pending",
            "title": "Please fill in: Surgery consent",
            "action": {"href": "/forms/7f2e0a2a-4d9c-4e3a-9b5c-9d8a7f6e5d4c"},
        },
        {
            "kind": "appointment_to_confirm",
            "title": "Please confirm your appointment on Thu 10 Dec at 09:30",
            "action": {"href": "/pets/p1"},
        },
        {"kind": "sms_opt_in", "title": "Opt into receiving texts", "action": {"href": "/notifications"}},
    ],
}
# todo's whole answer: the list and the Get Help Now options (the home screen shows the list).
TODO_ANSWER = {**TODO, "help": {"live_chat": False, "booking_mode": None}}
MESSAGE_SENT = {
    "message_id": "6f1c2a4e-7d0b-4b8e-9a55-1f2e3d4c5b6a",
    "conversation_id": "0b8d6c5e-2f4a-4c3b-8e1d-9a7f6e5d4c3b",
    "sent_at": "2026-03-01T09:30:00Z",
}
PET = {
    "patient_id": "p1",
    "clinic_id": "clinic-1",
    "clinic_name": "Happy Paws",
    "name": "Rex",
    "species": "canine",
    "breed": "Labrador",
    "sex": "male neutered",
    "date_of_birth": "2020-01-02",
    "colour": None,
    "weight_kg": 31.5,
    "microchip": None,
    "age": {"years": 6, "months": 2, "text": "6 years 2 months"},
}


def appointment(appointment_id: str, starts_at: str) -> dict[str, Any]:
    return {
        "appointment_id": appointment_id,
        "patient_id": "p1",
        "pet_name": "Rex",
        "clinic_id": "clinic-1",
        "starts_at": starts_at,
        "local_start": starts_at.replace("Z", "+00:00"),
        "timezone": "UTC",
        "duration_minutes": 30,
        "appointment_type": "Exam",
        "reason": "Annual check",
        "provider": None,
        "status": "scheduled",
    }


LATER, SOONER = appointment("a-2", "2026-12-20T10:00:00Z"), appointment("a-1", "2026-12-10T09:30:00Z")
# pets' overview (GET /api/v1/pets-overview) of a parent without pets.
NO_PETS: dict[str, Any] = {"pets": [], "appointments": []}


async def test_home_composes_todo_and_pets_and_the_help_options(app_and_network: Any, keys: Any) -> None:
    client, network = app_and_network
    network.handlers["todo.test:4"] = answer("todo", json=TODO_ANSWER)
    network.handlers["pets.test:2"] = answer("pets", json={"pets": [PET], "appointments": [LATER, SOONER]})
    token = keys.parent()

    response = await client.get("/api/v1/home", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json() == {
        "todo": TODO,
        "pets": [PET],
        "upcoming_appointments": [SOONER, LATER],  # soonest first
        "get_help": [
            {"kind": "talk_to_staff", "href": "/conversation"},
            {"kind": "book_appointment", "href": "/pets"},
        ],
    }
    # One call to each service: pets answers the pets and the appointments together.
    assert sorted(r.url.path for r in network.seen) == ["/api/v1/pets-overview", "/api/v1/todo"]
    assert all(r.headers["authorization"] == f"Bearer {token}" for r in network.seen)


@pytest.mark.parametrize(
    "pets",
    [
        answer("pets", 500, json={"detail": "Internal Server Error"}),
        fail(AttemptNotConnected("refused")),
        answer("pets", content=b"not json", off_contract="a broken pets service: the home screen copes"),
    ],
)
async def test_home_degrades_without_pets(app_and_network: Any, keys: Any, pets: Handler) -> None:
    client, network = app_and_network
    network.handlers["todo.test:4"] = answer("todo", json=TODO_ANSWER)
    network.handlers["pets.test:2"] = pets

    response = await client.get("/api/v1/home", headers={"Authorization": f"Bearer {keys.parent()}"})

    assert response.status_code == 200
    assert response.json()["todo"] == TODO
    assert response.json()["pets"] is None
    assert response.json()["upcoming_appointments"] is None


@pytest.mark.parametrize(
    "todo",
    [
        answer("todo", 503, json={"detail": "MongoDB temporarily unavailable"}),
        fail(AttemptNotConnected("refused")),
        fail(AttemptTimeout("slow")),
    ],
)
async def test_home_fails_with_503_without_todo(app_and_network: Any, keys: Any, todo: Handler) -> None:
    client, network = app_and_network
    network.handlers["todo.test:4"] = todo
    network.handlers["pets.test:2"] = answer("pets", json=NO_PETS)

    response = await client.get("/api/v1/home", headers={"Authorization": f"Bearer {keys.parent()}"})

    assert response.status_code == 503
    assert response.json() == {"detail": "todo is unavailable"}


async def test_home_needs_a_parent_token(app_and_network: Any, keys: Any) -> None:
    client, network = app_and_network
    assert (await client.get("/api/v1/home")).status_code == 401
    staff = await client.get("/api/v1/home", headers={"Authorization": f"Bearer {keys.staff()}"})
    assert staff.status_code == 403
    assert network.seen == []


async def test_upstream_timeout_is_504(app_and_network: Any, keys: Any) -> None:
    client, network = app_and_network

    network.handlers["pets.test:2"] = fail(AttemptTimeout("timed out"))
    response = await client.get("/api/v1/pets", headers={"Authorization": f"Bearer {keys.parent()}"})
    assert response.status_code == 504
    assert response.json() == {"detail": "pets timed out"}


async def test_unknown_path_is_404_and_wrong_method_on_home_is_405(app_and_network: Any, keys: Any) -> None:
    client, network = app_and_network
    assert (await client.get("/api/v1/nothing-here")).status_code == 404
    # httpx would normalise a literal "..", an encoded one reaches the app as ".." once decoded.
    assert (await client.get("/api/v1/auth/%2e%2e/account")).status_code == 404
    auth = {"Authorization": f"Bearer {keys.parent()}"}
    assert (await client.post("/api/v1/home", headers=auth)).status_code == 405
    assert network.seen == []


async def test_staff_routes_demand_a_staff_token(app_and_network: Any, keys: Any) -> None:
    client, network = app_and_network
    network.handlers["messaging.test:3"] = answer("messaging", 201, json=MESSAGE_SENT)
    path = "/clinic/v1/clients/c-1/messages"
    parent = await client.post(
        path, json={"body": "hi"}, headers={"Authorization": f"Bearer {keys.parent()}"}
    )
    assert parent.status_code == 403
    assert network.seen == []
    staff = await client.post(path, json={"body": "hi"}, headers={"Authorization": f"Bearer {keys.staff()}"})
    assert staff.status_code == 201
    assert json.loads(network.seen[0].content) == {"body": "hi"}


async def test_oversized_bodies_are_refused_before_forwarding(app_and_network: Any) -> None:
    client, network = app_and_network
    network.handlers["sync.test:5"] = answer("sync", json={"accepted": 0, "rejected": []})
    response = await client.post("/pims/v1/records", content=b"x" * (SETTINGS.max_body_bytes + 1))
    assert response.status_code == 413
    assert network.seen == []


def test_a_part_of_the_home_screen_gets_at_most_two_seconds_by_default() -> None:
    assert GatewaySettings().upstream_timeout_seconds <= 2


async def test_home_leaves_out_pets_when_pets_is_slower_than_the_upstream_timeout(keys: Any) -> None:
    async def network(request: UpstreamRequest, _fresh: bool) -> UpstreamResponse:
        if httpx.URL(request.url).host == "pets.test":
            await asyncio.sleep(30)
        return answer("todo", json=TODO_ANSWER)(Seen(request))

    settings = SETTINGS.model_copy(update={"upstream_timeout_seconds": 0.2})
    app = create_app(settings, send=network)
    app.state.token_verifier = TokenVerifier(None, static_jwks=keys.jwks)
    async with app_client(app, "http://gateway") as client:
        started = time.monotonic()
        response = await client.get("/api/v1/home", headers={"Authorization": f"Bearer {keys.parent()}"})

    assert response.status_code == 200
    assert response.json()["pets"] is None
    assert time.monotonic() - started < 2


async def test_upstream_errors_say_when_to_retry(app_and_network: Any, keys: Any) -> None:
    client, _network = app_and_network
    response = await client.get("/api/v1/pets", headers={"Authorization": f"Bearer {keys.parent()}"})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1


async def test_metrics_are_not_public_and_http_metrics_carry_no_host_or_path(
    app_and_network: Any, keys: Any
) -> None:
    client, network = app_and_network
    network.handlers["pets.test:2"] = answer("pets", json=PET)
    host = f"attacker-{uuid.uuid4().hex}.example"
    auth = {"Authorization": f"Bearer {keys.parent()}", "Host": host}
    assert (await client.get("/api/v1/pets/p-93817", headers=auth)).status_code == 200

    assert (await client.get("/metrics")).status_code == 404
    exposition = generate_latest().decode()
    series = [line for line in exposition.splitlines() if line.startswith("http_server_")]
    assert series
    assert host not in exposition
    assert "p-93817" not in exposition
    labels = {label for line in series for label in re.findall(r"(\w+)=\"", line)}
    assert labels - {"otel_scope_name", "otel_scope_version", "otel_scope_schema_url", "le"} <= {
        "http_request_method",
        "http_response_status_code",
        "http_route",
        "error_type",
    }


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/api/v1/home/", "/api/v1/home"),
        ("/api/v1/home/?view=compact", "/api/v1/home?view=compact"),
        ("/healthz/", "/healthz"),
        ("/readyz/", "/readyz"),
    ],
)
async def test_the_gateways_own_routes_with_a_trailing_slash_redirect_to_the_canonical_path(
    app_and_network: Any, keys: Any, path: str, location: str
) -> None:
    client, network = app_and_network
    network.handlers["identity.test:1"] = answer("identity", json=keys.jwks)
    network.handlers["todo.test:4"] = answer("todo", json=TODO_ANSWER)
    network.handlers["pets.test:2"] = answer("pets", json=NO_PETS)
    auth = {"Authorization": f"Bearer {keys.parent()}"}

    redirect = await client.get(path, headers=auth)
    followed = await client.get(path, headers=auth, follow_redirects=True)

    assert redirect.status_code == 308
    assert redirect.headers["location"] == location
    assert followed.status_code == 200


async def test_another_method_on_the_gateways_own_route_is_405_with_allow(
    app_and_network: Any, keys: Any
) -> None:
    client, _network = app_and_network
    response = await client.post("/api/v1/home", headers={"Authorization": f"Bearer {keys.parent()}"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_an_upstream_answer_of_the_wrong_shape_is_no_500(app_and_network: Any, keys: Any) -> None:
    client, network = app_and_network
    auth = {"Authorization": f"Bearer {keys.parent()}"}
    network.handlers["todo.test:4"] = answer("todo", json=TODO_ANSWER)
    network.handlers["pets.test:2"] = answer(
        "pets", json=["not a pet"], off_contract="a pets of the wrong shape"
    )
    without_pets = await client.get("/api/v1/home", headers=auth)
    network.handlers["todo.test:4"] = answer(
        "todo", json=["not a to-do list"], off_contract="a todo of the wrong shape"
    )
    without_todo = await client.get("/api/v1/home", headers=auth)

    assert (without_pets.status_code, without_pets.json()["pets"]) == (200, None)
    assert without_todo.status_code == 503


async def test_a_request_the_http_client_refuses_to_write_is_400(app_and_network: Any) -> None:
    client, network = app_and_network
    network.handlers["sync.test:5"] = fail(AttemptUnforwardable("Illegal header value"))
    response = await client.get("/pims/v1/rejections")
    assert (response.status_code, response.json()) == (400, {"detail": "the request cannot be forwarded"})


def test_the_rate_limit_storage_cannot_be_a_database_the_gateway_does_not_have() -> None:
    with pytest.raises(ValueError, match="own database"):
        create_app(SETTINGS.model_copy(update={"rate_limit_storage_url": "postgresql"}))


def test_the_gateways_openapi_documents_the_home_screen() -> None:
    document = create_app(SETTINGS).openapi()
    schemas = document["components"]["schemas"]
    answer = document["paths"]["/api/v1/home"]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/HomeScreen"}
    assert set(schemas["HomeScreen"]["required"]) == {"todo", "pets", "upcoming_appointments", "get_help"}
    assert schemas["TodoItem"]["properties"]["action"] == {"$ref": "#/components/schemas/TodoAction"}
    assert set(schemas["Pet"]["required"]) == set(PET)


@pytest.mark.parametrize(
    ("help", "options"),
    [
        (
            {"live_chat": False, "booking_mode": None},
            [("talk_to_staff", "/conversation"), ("book_appointment", "/pets")],
        ),
        (
            {"live_chat": True, "booking_mode": "request"},
            [
                ("talk_to_staff", "/conversation"),
                ("live_chat", "/conversation"),
                ("book_appointment", "/pets"),
            ],
        ),
        (
            {"live_chat": True, "booking_mode": "direct"},
            [
                ("talk_to_staff", "/conversation"),
                ("live_chat", "/conversation"),
                ("book_appointment", "/book"),
            ],
        ),
        ({"live_chat": False, "booking_mode": "none"}, [("talk_to_staff", "/conversation")]),
    ],
)
async def test_get_help_now_follows_the_clinics_settings_and_the_parents_care_plan(
    app_and_network: Any, keys: Any, help: dict[str, Any], options: list[tuple[str, str]]
) -> None:
    """Live chat only for a Care plan member at a clinic with chat on (todo decides, from its read
    model); booking unless the clinic turned it off: the booking screen where it takes direct
    bookings, a request from the pet's page otherwise."""
    client, network = app_and_network
    network.handlers["todo.test:4"] = answer("todo", json={**TODO, "help": help})
    network.handlers["pets.test:2"] = answer("pets", json=NO_PETS)

    response = await client.get("/api/v1/home", headers={"Authorization": f"Bearer {keys.parent()}"})

    assert response.status_code == 200
    assert [(o["kind"], o["href"]) for o in response.json()["get_help"]] == options
    assert "help" not in response.json()["todo"]


async def test_home_reads_todo_and_pets_tolerantly_of_fields_it_does_not_know(
    app_and_network: Any, keys: Any
) -> None:
    """A service may add a field (its documents allow more properties): the home screen keeps
    working and leaves the field out."""
    client, network = app_and_network
    todo = {**TODO_ANSWER, "generated_at": "2026-03-01T09:30:00Z"}
    pets = {"pets": [{**PET, "insured": True}], "appointments": [], "next_cursor": None}
    network.handlers["todo.test:4"] = answer("todo", json=todo)
    network.handlers["pets.test:2"] = answer("pets", json=pets)

    response = await client.get("/api/v1/home", headers={"Authorization": f"Bearer {keys.parent()}"})

    assert response.status_code == 200
    assert (response.json()["todo"], response.json()["pets"]) == (TODO, [PET])


async def test_the_web_portal_is_served_on_the_api_origin(tmp_path: Any) -> None:
    web = tmp_path / "dist"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>Pet Portal</title>")
    (web / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not for the web")
    app = create_app(SETTINGS.model_copy(update={"web_dir": web}), send=FakeNetwork())
    async with app_client(app, "http://gateway") as client:
        for page in ("/", "/pets/P-1", "/sign-in/link", "/c/demo-clinic"):
            response = await client.get(page)
            assert response.status_code == 200, page
            assert "Pet Portal" in response.text
            assert response.headers["cache-control"] == "no-cache"
            assert "script-src 'self'" in response.headers["content-security-policy"]
        asset = await client.get("/assets/index-abc123.js")
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert (await client.get("/assets/missing.js")).status_code == 404
        assert (await client.get("/secret.txt")).status_code == 404
        assert (await client.get("/%2e%2e/secret.txt")).status_code in (400, 404)
        # API paths are never the portal's page, even unknown ones.
        unknown = await client.get("/api/v1/nothing-here")
        assert (unknown.status_code, unknown.headers["content-type"]) == (404, "application/json")
        assert (await client.post("/pets/P-1")).status_code == 404


def serves_its_document(service: str) -> Handler:
    """The service's answer to GET /openapi.json: its committed OpenAPI document (the contract itself)."""

    def handler(seen: Seen) -> UpstreamResponse:
        assert (seen.method, seen.url.path) == ("GET", "/openapi.json")
        return UpstreamResponse(
            200, [("content-type", "application/json")], json.dumps(openapi_snapshot(service)).encode()
        )

    handler.checked = True  # type: ignore[attr-defined]
    return handler


async def test_the_gateway_publishes_one_document_of_every_route_it_serves() -> None:
    network = FakeNetwork()
    hosts = {name: httpx.URL(url) for name, url in SETTINGS.upstream_urls().items()}
    for name, url in hosts.items():
        network.handlers[f"{url.host}:{url.port}"] = serves_its_document(name)
    app = create_app(SETTINGS, send=network)
    async with app_client(app, "http://gateway") as client:
        response = await client.get("/openapi.json")
        assert response.status_code == 200, response.text
        document = response.json()
        # A second request within the minute is answered from the copies.
        seen = len(network.seen)
        assert (await client.get("/openapi.json")).json() == document
        assert len(network.seen) == seen
    paths = document["paths"]
    # The gateway's own, and each service's public routes; nothing internal, nothing not forwarded.
    expected = (
        "/api/v1/home",
        "/api/v1/pets/{patient_id}",
        "/api/v1/auth/sign-in",
        "/clinic/v1/deliveries",
        "/pims/v1/records",
        "/webhooks/sms/inbound",
        "/api/v1/conversation/messages/photo",
    )
    for path in expected:
        assert path in paths, path
    assert not [p for p in paths if p.startswith("/internal/")]
    assert "/.well-known/jwks.json" not in paths
    for service in hosts:
        public = [p for p in openapi_snapshot(service)["paths"] if forwarded_to(p) == service]
        assert public, service
        assert set(public) <= set(paths), service
    # Every $ref resolves in the merged document.
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs <= set(document["components"]["schemas"]), refs - set(document["components"]["schemas"])


async def test_the_document_is_a_fast_503_while_a_service_never_answered() -> None:
    network = FakeNetwork()  # nobody answers
    app = create_app(SETTINGS, send=network)
    async with app_client(app, "http://gateway") as client:
        assert (await client.get("/openapi.json")).status_code == 503


def test_the_committed_documents_merge_without_clashes() -> None:
    own = {"openapi": "3.1.0", "info": {"title": "gateway", "version": "1"}, "paths": {}}
    documents = {name: openapi_snapshot(name) for name in SETTINGS.upstream_urls()}
    _, clashes = merge(own, documents)
    assert clashes == []


def test_no_route_of_the_gateways_own_is_under_a_services_prefix() -> None:
    """The services' paths are matched before the gateway's own routes (UpstreamRoute): a route of
    the gateway's under a service's prefix would never be reached."""
    app = create_app(SETTINGS)
    routes = {path for r in app.routes if (path := getattr(r, "path", None)) and "{" not in path}
    own = routes | set(app.openapi()["paths"]) | {"/healthz", "/readyz"}
    assert {"/api/v1/home", "/openapi.json", "/docs"} <= own
    for path in own:
        route = resolve(path)
        assert route is None or route.upstream == "gateway", path


async def test_a_method_a_service_path_does_not_take_is_405(app_and_network: Any, keys: Any) -> None:
    client, _network = app_and_network
    response = await client.request("TRACE", "/api/v1/todo", headers=keys.parent_headers())
    assert response.status_code == 405
