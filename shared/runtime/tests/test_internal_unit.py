import httpx
import pytest
from fastapi import APIRouter
from pydantic import SecretStr, ValidationError

from petportal_runtime.internal import InternalCaller, internal_headers
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit


def _app(settings: ServiceSettings) -> httpx.AsyncClient:
    router = APIRouter()

    @router.post("/internal/v1/ping")
    async def ping(_caller: InternalCaller) -> dict[str, str]:
        return {"ok": "yes"}

    runtime = ServiceRuntime(settings, database=False, broker=False)
    app = runtime.create_app(title="unit", routers=[router])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


async def test_an_internal_route_answers_only_the_services_shared_credential() -> None:
    settings = ServiceSettings(service_name="unit", internal_api_token=SecretStr("s3cret-s3cret"))
    async with _app(settings) as http:
        assert (await http.post("/internal/v1/ping", headers=internal_headers(settings))).status_code == 200
        assert (await http.post("/internal/v1/ping")).status_code == 401
        wrong = {"Authorization": "Bearer s3cret-s3creT"}
        assert (await http.post("/internal/v1/ping", headers=wrong)).status_code == 401
        other = ServiceSettings(service_name="unit")  # the development default is not this secret
        assert (await http.post("/internal/v1/ping", headers=internal_headers(other))).status_code == 401


def test_production_refuses_the_development_credential() -> None:
    with pytest.raises(ValidationError, match="INTERNAL_API_TOKEN"):
        ServiceSettings(service_name="unit", environment="production")
    ServiceSettings(service_name="unit", environment="production", internal_api_token=SecretStr("x" * 32))
