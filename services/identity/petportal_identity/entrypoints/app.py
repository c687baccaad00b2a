"""identity's HTTP API: JWKS, staff sign-in, development parent tokens, the parent's account."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request, status
from pydantic import BaseModel, ConfigDict, Field

from petportal_runtime.auth import CurrentParent
from petportal_runtime.container import container_of
from petportal_runtime.errors import ErrorAnswer, ErrorStatuses
from petportal_runtime.text import Text
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import Identity, bootstrap
from ..domain.model import INVALID_CREDENTIALS
from ..service_layer import services
from ..service_layer.services import IssuedToken
from ..service_layer.unit_of_work import IdentityUnitOfWork

PimsId = Annotated[str, Field(pattern=ID_PATTERN)]


class StaffLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Text = Field(min_length=1, max_length=254)
    password: Text = Field(min_length=1, max_length=1024)
    # Only needed when one email is a staff user at several clinics.
    clinic_id: PimsId | None = None


class DevTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinic_id: PimsId
    client_id: PimsId


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int

    @classmethod
    def of(cls, issued: IssuedToken) -> TokenResponse:
        return cls(access_token=issued.access_token, expires_in=issued.expires_in)


class AccountPublic(BaseModel):
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    editable: bool = False


def _identity(request: Request) -> Identity:
    identity: Identity = container_of(request)
    return identity


def _unit_of_work(request: Request) -> IdentityUnitOfWork:
    return _identity(request).unit_of_work()


IdentityDep = Annotated[Identity, Depends(_identity)]
UnitOfWork = Annotated[IdentityUnitOfWork, Depends(_unit_of_work)]


keys = APIRouter(tags=["keys"])


@keys.get("/.well-known/jwks.json")
async def jwks(identity: IdentityDep) -> dict[str, Any]:
    return identity.tokens.key.jwks()


staff = APIRouter(prefix="/clinic/v1/auth", tags=["staff"])


@staff.post(
    "/token",
    responses={401: {"description": INVALID_CREDENTIALS}, 429: {"description": "too many attempts"}},
)
async def staff_token(
    body: StaffLogin, request: Request, identity: IdentityDep, uow: UnitOfWork
) -> TokenResponse:
    # uvicorn resolves X-Forwarded-For from trusted proxies (the gateway) into request.client.
    client_ip = request.client.host if request.client else "unknown"
    issued = await services.staff_sign_in(
        uow,
        identity.limiter,
        identity.tokens,
        email=body.email,
        password=body.password,
        clinic_id=body.clinic_id,
        client_ip=client_ip,
    )
    return TokenResponse.of(issued)


dev = APIRouter(prefix="/api/v1/auth", tags=["development"])


@dev.post("/dev-token", responses={404: {"description": "unknown client"}})
async def dev_token(body: DevTokenRequest, identity: IdentityDep, uow: UnitOfWork) -> TokenResponse:
    """A parent token for any known client, without signing in. Never mounted in production."""
    return TokenResponse.of(await services.dev_token(uow, identity.tokens, body.clinic_id, body.client_id))


account = APIRouter(prefix="/api/v1", tags=["parent"])


@account.get("/account", responses={404: {"description": "unknown client"}})
async def get_account(parent: CurrentParent, uow: UnitOfWork) -> AccountPublic:
    contact = await services.contact_details(uow, parent.clinic_id, parent.client_id)
    return AccountPublic(
        first_name=contact.first_name, last_name=contact.last_name, email=contact.email, phone=contact.phone
    )


def _retry_after(error: services.TooManySignInAttempts) -> dict[str, str]:
    return {"Retry-After": str(error.retry_after)}


# Domain errors answered over HTTP, for every route.
ERRORS: ErrorStatuses = {
    services.InvalidCredentials: ErrorAnswer(
        status.HTTP_401_UNAUTHORIZED, headers=lambda _: {"WWW-Authenticate": "Bearer"}
    ),
    services.AmbiguousStaffError: status.HTTP_409_CONFLICT,
    services.TooManySignInAttempts: ErrorAnswer(status.HTTP_429_TOO_MANY_REQUESTS, headers=_retry_after),
    services.UnknownClient: status.HTTP_404_NOT_FOUND,
}


def create_app(container: Identity | None = None) -> FastAPI:
    container = container or bootstrap()
    routers = [keys, staff, account]
    if container.settings.dev_token_endpoint_enabled:
        routers.append(dev)
    app = container.runtime.create_app(title="Pet Portal identity", routers=routers, errors=ERRORS)
    app.state.container = container
    return app
