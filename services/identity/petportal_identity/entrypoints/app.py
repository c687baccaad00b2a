"""identity's HTTP API: JWKS, staff sign-in, development parent tokens, the parent's account."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from petportal_runtime.auth import CurrentParent
from petportal_runtime.container import container_of
from petportal_runtime.text import Text
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import Identity, bootstrap
from ..domain.model import INVALID_CREDENTIALS, normalise_email
from ..service_layer import services
from ..service_layer.services import AmbiguousStaffError, IssuedToken

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


IdentityDep = Annotated[Identity, Depends(_identity)]


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=INVALID_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"}
    )


keys = APIRouter(tags=["keys"])


@keys.get("/.well-known/jwks.json")
async def jwks(identity: IdentityDep) -> dict[str, Any]:
    return identity.tokens.key.jwks()


staff = APIRouter(prefix="/clinic/v1/auth", tags=["staff"])


@staff.post(
    "/token",
    responses={401: {"description": INVALID_CREDENTIALS}, 429: {"description": "too many attempts"}},
)
async def staff_token(body: StaffLogin, request: Request, identity: IdentityDep) -> TokenResponse:
    email = normalise_email(body.email)
    # uvicorn resolves X-Forwarded-For from trusted proxies (the gateway) into request.client.
    client_ip = request.client.host if request.client else "unknown"
    retry_after = await identity.limiter.hit(email, client_ip)
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many sign-in attempts; try again later",
            headers={"Retry-After": str(int(retry_after))},
        )
    async with identity.runtime.transaction() as session:
        candidates = await services.find_staff_candidates(session, email, body.clinic_id)
    try:
        user = await services.verify_staff_password(candidates, body.password)
    except AmbiguousStaffError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="this email belongs to several clinics: give clinic_id"
        ) from None
    if user is None:
        raise _unauthorized()
    await identity.limiter.unlock(email)  # the lockout counts failed attempts in a row
    return TokenResponse.of(identity.tokens.staff(user))


dev = APIRouter(prefix="/api/v1/auth", tags=["development"])


@dev.post("/dev-token", responses={404: {"description": "unknown client"}})
async def dev_token(body: DevTokenRequest, identity: IdentityDep) -> TokenResponse:
    """A parent token for any known client, without signing in. Never mounted in production."""
    async with identity.runtime.transaction() as session:
        if await services.contact_details(session, body.clinic_id, body.client_id) is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"no client {body.client_id} at clinic {body.clinic_id}"
            )
        account_id = await services.open_account(session, body.clinic_id, body.client_id, "dev")
    return TokenResponse.of(identity.tokens.parent(account_id, body.clinic_id, body.client_id))


account = APIRouter(prefix="/api/v1", tags=["parent"])


@account.get("/account", responses={404: {"description": "unknown client"}})
async def get_account(parent: CurrentParent, identity: IdentityDep) -> AccountPublic:
    async with identity.runtime.transaction() as session:
        contact = await services.contact_details(session, parent.clinic_id, parent.client_id)
    if contact is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no client {parent.client_id} at clinic {parent.clinic_id}"
        )
    return AccountPublic(
        first_name=contact.first_name, last_name=contact.last_name, email=contact.email, phone=contact.phone
    )


def create_app(container: Identity | None = None) -> FastAPI:
    identity = container or bootstrap()
    routers = [keys, staff, account]
    if identity.settings.dev_token_endpoint_enabled:
        routers.append(dev)
    app = identity.runtime.create_app(title="Pet Portal identity", routers=routers)
    app.state.container = identity
    return app
