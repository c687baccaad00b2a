"""ParentRoute answers and documents a parent's route exactly as FastAPI's own route class does."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from petportal_devkit.tokens import TokenMinter
from petportal_runtime.auth import CurrentParent
from petportal_runtime.routes import ParentRoute
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit


class Greeting(BaseModel):
    client_id: str
    clinics: list[str]


async def greet(request: Request, parent: CurrentParent) -> Response:
    """Hello to the parent."""
    greeting = Greeting(client_id=parent.client_id, clinics=[m.clinic_id for m in parent.memberships])
    return Response(greeting.model_dump_json(), media_type="application/json")


fast = APIRouter(route_class=ParentRoute)
fast.get("/fast", response_model=Greeting)(greet)
plain = APIRouter()
plain.get("/plain", response_model=Greeting)(greet)


@pytest.fixture(scope="module")
def keys() -> TokenMinter:
    return TokenMinter()


@pytest.fixture
async def http(keys: TokenMinter) -> AsyncIterator[httpx.AsyncClient]:
    runtime = ServiceRuntime(
        ServiceSettings(service_name="routes-unit"),
        database=False,
        broker=False,
        token_verifier=keys.verifier,
    )
    app = runtime.create_app(title="routes", routers=[fast, plain])
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://routes") as client:
        yield client


async def test_it_answers_as_fastapis_route_does(http: httpx.AsyncClient, keys: TokenMinter) -> None:
    parent = {"Authorization": f"Bearer {keys.parent('c1', 'k1', clients=(('c2', 'k9'),))}"}
    cases: list[tuple[str, dict[str, str]]] = [
        ("", parent),  # 200
        ("", {}),  # 401: no token
        ("", {"Authorization": "Bearer not-a-token"}),  # 401
        ("", {"Authorization": f"Bearer {keys.staff()}"}),  # 403: not a parent's
        ("?q=%07", parent),  # 422: the app-wide input checks
        ("?q=%07", {}),  # those come first
    ]
    for query, headers in cases:
        ours, theirs = (
            await http.get(f"/fast{query}", headers=headers),
            await http.get(f"/plain{query}", headers=headers),
        )
        assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json()), (query, headers)
        assert ours.headers.get("www-authenticate") == theirs.headers.get("www-authenticate")
    answered = await http.get("/fast", headers=parent)
    assert answered.json() == {"client_id": "k1", "clinics": ["c1", "c2"]}


async def test_it_is_documented_as_fastapis_route_is(http: httpx.AsyncClient) -> None:
    paths: dict[str, Any] = (await http.get("/openapi.json")).json()["paths"]
    ours, theirs = paths["/fast"]["get"], paths["/plain"]["get"]
    assert {**ours, "operationId": None} == {**theirs, "operationId": None}
    assert ours["security"] == [{"HTTPBearer": []}]


def test_an_endpoint_taking_anything_else_is_refused() -> None:
    async def takes_a_query(request: Request, parent: CurrentParent, q: str = "") -> Response:
        return Response()

    async def parent_first(parent: CurrentParent, request: Request) -> Response:
        return Response()

    async def no_token(request: Request) -> Response:
        return Response()

    for bad in (takes_a_query, parent_first, no_token):
        with pytest.raises(TypeError, match="ParentRoute"):
            APIRouter(route_class=ParentRoute).get("/bad")(bad)
