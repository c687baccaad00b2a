"""identity's HTTP API: JWKS, staff sign-in, development parent tokens, the parent's account."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from petportal_runtime.auth import ClientRef, CurrentParent, CurrentStaff
from petportal_runtime.container import container_of
from petportal_runtime.errors import ErrorAnswer, ErrorStatuses
from petportal_runtime.internal import PREFIX as INTERNAL_PREFIX
from petportal_runtime.internal import InternalCaller
from petportal_runtime.text import Text
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import Identity, bootstrap
from ..domain.erasure import Erasure
from ..domain.model import INVALID_CREDENTIALS
from ..domain.qr import qr_code
from ..domain.sign_in import InvalidIdentifier
from ..service_layer import erasure as erasure_service
from ..service_layer import services
from ..service_layer import sign_in as sign_in_service
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
    return identity.keys.jwks()


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


sign_in = APIRouter(prefix="/api/v1/auth", tags=["sign-in"])

SENT = (
    "If this email address or mobile number is on file at your clinic, we have sent it a sign-in code "
    "and link. Nothing arrived? Check the address, or ask your clinic which one they have for you. "
    "If you texted STOP to your clinic, text START to get codes by text again, or use your email."
)


class SignInRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier: Text = Field(
        min_length=3, max_length=254, description="the email or mobile number your clinic has for you"
    )
    clinic_id: PimsId | None = Field(default=None, description="from a clinic's own sign-in link or QR code")


class SignInStarted(BaseModel):
    challenge_id: uuid.UUID
    message: str = SENT


class CodeVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: uuid.UUID
    code: str = Field(pattern=r"^[0-9]{6}$")
    clinic_id: PimsId | None = None


class LinkVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    clinic_id: PimsId | None = None


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    clinic_id: PimsId | None = Field(default=None, description="switch to another of your clinics")


class ClinicMembership(BaseModel):
    clinic_id: str
    client_id: str


class Session(TokenResponse):
    refresh_token: str
    clinic_id: str = Field(description="the clinic the access token acts at")
    clients: list[ClinicMembership] = Field(description="every clinic where you are a client")

    @classmethod
    def of_session(cls, signed: sign_in_service.SignedIn) -> Session:
        return cls(
            access_token=signed.access.access_token,
            expires_in=signed.access.expires_in,
            refresh_token=signed.refresh_token,
            clinic_id=signed.selected.clinic_id,
            clients=[ClinicMembership(clinic_id=c.clinic_id, client_id=c.client_id) for c in signed.clients],
        )


def _client_ip(request: Request) -> str:
    # uvicorn resolves X-Forwarded-For from trusted proxies (the gateway) into request.client.
    return request.client.host if request.client else "unknown"


@sign_in.post(
    "/sign-in",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        422: {"description": "not an email or phone number"},
        429: {"description": "too many requests"},
    },
)
async def start_sign_in(
    body: SignInRequest, request: Request, identity: IdentityDep, uow: UnitOfWork
) -> SignInStarted:
    """Send a one-time code and link to the email or mobile number on the parent's contact record. The
    answer is the same whether or not anyone has that identifier."""
    challenge = await sign_in_service.request_code(
        uow,
        identity.parent_limiter,
        identity.sign_in,
        identity.send_code,
        identifier=body.identifier,
        clinic_id=body.clinic_id,
        client_ip=_client_ip(request),
    )
    return SignInStarted(challenge_id=challenge)


@sign_in.post(
    "/sign-in/verify",
    responses={
        400: {"description": "wrong, expired or used code"},
        429: {"description": "too many wrong codes"},
    },
)
async def verify_code(body: CodeVerification, identity: IdentityDep, uow: UnitOfWork) -> Session:
    signed = await sign_in_service.verify_code(
        uow,
        identity.tokens,
        identity.sign_in,
        challenge_id=body.challenge_id,
        code=body.code,
        clinic_id=body.clinic_id,
    )
    return Session.of_session(signed)


@sign_in.post("/sign-in/link", responses={400: {"description": "expired or used link"}})
async def verify_link(body: LinkVerification, identity: IdentityDep, uow: UnitOfWork) -> Session:
    """The magic link's token (from the URL fragment): signs in once."""
    signed = await sign_in_service.verify_link(
        uow, identity.tokens, identity.sign_in, token=body.token, clinic_id=body.clinic_id
    )
    return Session.of_session(signed)


class PrefillPublic(BaseModel):
    identifier: str | None = Field(description="the email or number on the contact record, to pre-fill")
    clinic_id: str


@sign_in.post("/sign-in/link/prefill", responses={400: {"description": "not a reminder link"}})
async def link_prefill(body: LinkVerification, identity: IdentityDep, uow: UnitOfWork) -> PrefillPublic:
    """A reminder link that was already used (or has expired) still opens its clinic's sign-in with
    the identifier filled in."""
    found = await sign_in_service.link_prefill(uow, identity.sign_in, token=body.token)
    return PrefillPublic(identifier=found.identifier, clinic_id=found.clinic_id)


internal = APIRouter(prefix=f"{INTERNAL_PREFIX}/v1", tags=["internal"])


class ClientPair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinic_id: PimsId
    client_id: PimsId


class ReminderLinksRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clients: list[ClientPair] = Field(min_length=1, max_length=1000)
    ttl_days: int = Field(default=14, ge=1, le=60)


class ReminderLink(BaseModel):
    clinic_id: str
    client_id: str
    url: str | None = Field(description="null for a client identity does not know")


class ReminderLinks(BaseModel):
    links: list[ReminderLink]


@internal.post("/reminder-links")
async def new_reminder_links(
    _caller: InternalCaller, body: ReminderLinksRequest, identity: IdentityDep, uow: UnitOfWork
) -> ReminderLinks:
    """Sign-in links for the reminders notify is sending, one per client (each signs that client in
    once, then pre-fills); one request for a whole round of reminders."""
    made = await sign_in_service.reminder_links(
        uow,
        identity.sign_in,
        [ClientRef(clinic_id=c.clinic_id, client_id=c.client_id) for c in body.clients],
        body.ttl_days,
    )
    return ReminderLinks(
        links=[ReminderLink(clinic_id=ref.clinic_id, client_id=ref.client_id, url=url) for ref, url in made]
    )


@sign_in.post("/refresh", responses={401: {"description": "sign in again"}})
async def refresh(body: RefreshRequest, identity: IdentityDep, uow: UnitOfWork) -> Session:
    """A new access token and a new refresh token; the one given is spent (given again, it ends the
    session)."""
    signed = await sign_in_service.refresh(
        uow, identity.tokens, identity.sign_in, refresh_token=body.refresh_token, clinic_id=body.clinic_id
    )
    return Session.of_session(signed)


@sign_in.post("/sign-out", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(body: RefreshRequest, identity: IdentityDep, uow: UnitOfWork) -> None:
    await sign_in_service.sign_out(uow, identity.sign_in, refresh_token=body.refresh_token)


@sign_in.post("/sign-out-everywhere", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out_everywhere(parent: CurrentParent, uow: UnitOfWork) -> None:
    """Ends every session of the signed-in person, on every device."""
    await sign_in_service.sign_out_everywhere(uow, person=parent.sub)


clinic_link = APIRouter(prefix="/clinic/v1/sign-in-link", tags=["clinic"])


class ClinicLink(BaseModel):
    url: str = Field(description="opens the portal's sign-in for this clinic")
    qr_png: str
    qr_svg: str


def _clinic_url(identity: Identity, clinic_id: str) -> str:
    return f"{identity.settings.portal_public_url.rstrip('/')}/c/{clinic_id}"


@clinic_link.get("")
async def get_clinic_link(staff: CurrentStaff, identity: IdentityDep) -> ClinicLink:
    """The clinic's own sign-in link, and where its QR code is (to print for the front desk)."""
    base = "/clinic/v1/sign-in-link"
    return ClinicLink(
        url=_clinic_url(identity, staff.clinic_id), qr_png=f"{base}/qr.png", qr_svg=f"{base}/qr.svg"
    )


@clinic_link.get(
    "/qr.{kind}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "the QR code"}},
)
async def get_clinic_qr(
    kind: Annotated[Literal["png", "svg"], PathParam()], staff: CurrentStaff, identity: IdentityDep
) -> Response:
    """The clinic's sign-in link as a QR code (error correction M, a 4-module quiet zone)."""
    image = qr_code(_clinic_url(identity, staff.clinic_id), kind)
    media_type = "image/png" if kind == "png" else "image/svg+xml"
    return Response(
        image,
        media_type=media_type,
        headers={"Content-Disposition": f'inline; filename="sign-in-{staff.clinic_id}.{kind}"'},
    )


account = APIRouter(prefix="/api/v1", tags=["parent"])


@account.get("/account", responses={404: {"description": "unknown client"}})
async def get_account(parent: CurrentParent, uow: UnitOfWork) -> AccountPublic:
    contact = await services.contact_details(uow, parent.clinic_id, parent.client_id)
    return AccountPublic(
        first_name=contact.first_name, last_name=contact.last_name, email=contact.email, phone=contact.phone
    )


# --- permanent erasure (docs/erasure.md) ------------------------------------------------------


class ErasureStarted(BaseModel):
    challenge_id: uuid.UUID
    message: str = Field(
        default="We sent you a code. Enter it to confirm that your portal data is erased for good."
    )


class ErasureConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: uuid.UUID
    code: str = Field(pattern=r"^[0-9]{6}$")


class ErasurePublic(BaseModel):
    erasure_id: uuid.UUID
    status: Literal["pending", "complete"]
    requested_at: datetime
    completed_at: datetime | None
    waiting_for: list[str] = Field(description="the services that have not confirmed yet")

    @classmethod
    def of(cls, erasure: Erasure) -> ErasurePublic:
        return cls(
            erasure_id=erasure.id,
            status=erasure.state,
            requested_at=erasure.requested_at,
            completed_at=erasure.completed_at,
            waiting_for=erasure.waiting_for(),
        )


class ClinicErasure(BaseModel):
    erasure_id: uuid.UUID
    client_id: str
    status: Literal["pending", "complete"]
    requested_at: datetime
    completed_at: datetime | None
    waiting_for: list[str]


class ClinicErasures(BaseModel):
    erasures: list[ClinicErasure]


@account.post("/account/erasure", status_code=status.HTTP_202_ACCEPTED)
async def start_erasure(parent: CurrentParent, identity: IdentityDep, uow: UnitOfWork) -> ErasureStarted:
    """Ask to erase your portal data at every clinic (your clinic's own records are kept): a fresh
    code is sent to you, to confirm with."""
    challenge = await erasure_service.request_code(
        uow, identity.sign_in, identity.send_erasure_code, parent=parent
    )
    return ErasureStarted(challenge_id=challenge)


@account.post(
    "/account/erasure/confirm",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        400: {"description": "wrong, expired or used code"},
        429: {"description": "too many wrong codes"},
    },
)
async def confirm_erasure(
    body: ErasureConfirmation, parent: CurrentParent, identity: IdentityDep, uow: UnitOfWork
) -> ErasurePublic:
    """Erase: your sessions end now; every service erases what it holds and confirms. Follow the
    progress at `/api/v1/erasures/{erasure_id}` (no sign-in needed)."""
    erasure = await erasure_service.confirm(
        uow, identity.sign_in, parent=parent, challenge_id=body.challenge_id, code=body.code
    )
    return ErasurePublic.of(erasure)


erasures = APIRouter(prefix="/api/v1/erasures", tags=["parent"])


@erasures.get("/{erasure_id}", responses={404: {"description": "no such erasure request"}})
async def get_erasure(erasure_id: uuid.UUID, uow: UnitOfWork) -> ErasurePublic:
    """How far an erasure has got. Its id is the only key (unguessable, given once); the answer
    holds no personal data."""
    return ErasurePublic.of(await erasure_service.status(uow, erasure_id))


clinic_erasures = APIRouter(prefix="/clinic/v1/erasures", tags=["clinic"])


@clinic_erasures.get("")
async def list_clinic_erasures(staff: CurrentStaff, uow: UnitOfWork) -> ClinicErasures:
    """The clinic's clients who erased their portal data (the 100 latest): the PIMS record stays."""
    found = await erasure_service.for_clinic(uow, staff.clinic_id)
    return ClinicErasures(
        erasures=[
            ClinicErasure(
                erasure_id=e.erasure_id,
                client_id=e.client_id,
                status="complete" if e.completed_at else "pending",
                requested_at=e.requested_at,
                completed_at=e.completed_at,
                waiting_for=e.waiting_for,
            )
            for e in found
        ]
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
    InvalidIdentifier: status.HTTP_422_UNPROCESSABLE_CONTENT,
    sign_in_service.InvalidCode: status.HTTP_400_BAD_REQUEST,
    sign_in_service.CodeLocked: status.HTTP_429_TOO_MANY_REQUESTS,
    sign_in_service.InvalidRefreshToken: ErrorAnswer(
        status.HTTP_401_UNAUTHORIZED, headers=lambda _: {"WWW-Authenticate": "Bearer"}
    ),
    sign_in_service.NotYourClinic: status.HTTP_403_FORBIDDEN,
    erasure_service.UnknownErasure: status.HTTP_404_NOT_FOUND,
}


def create_app(container: Identity | None = None) -> FastAPI:
    container = container or bootstrap()
    routers = [keys, staff, sign_in, clinic_link, account, erasures, clinic_erasures, internal]
    if container.settings.dev_token_endpoint_enabled:
        routers.append(dev)
    app = container.runtime.create_app(title="Pet Portal identity", routers=routers, errors=ERRORS)
    app.state.container = container
    return app
