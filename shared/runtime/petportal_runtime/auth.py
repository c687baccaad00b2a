"""JWT verification (EdDSA keys published by identity as a JWKS) and FastAPI dependencies."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, ValidationError

ISSUER = "petportal-identity"
AUDIENCE = "petportal"
ALGORITHM = "EdDSA"


class ClientRef(BaseModel):
    """One (clinic, client) membership: a person is a client at each clinic that has them on file."""

    model_config = ConfigDict(frozen=True)

    clinic_id: str
    client_id: str


class Principal(BaseModel):
    sub: str
    role: Literal["parent", "staff"]
    # The clinic (and for a parent, the client) a request acts at: the one selected in the portal.
    clinic_id: str
    client_id: str | None = None
    # Every clinic where the signed-in person is a client (parents only; may be absent in older tokens).
    clients: tuple[ClientRef, ...] = ()


class ParentPrincipal(Principal):
    role: Literal["parent"]
    client_id: str

    @property
    def memberships(self) -> tuple[ClientRef, ...]:
        """Every (clinic, client) pair this parent may see, the selected one always included."""
        selected = ClientRef(clinic_id=self.clinic_id, client_id=self.client_id)
        return self.clients if selected in self.clients else (selected, *self.clients)

    def is_client(self, clinic_id: str, client_id: str) -> bool:
        return ClientRef(clinic_id=clinic_id, client_id=client_id) in self.memberships


class StaffPrincipal(Principal):
    role: Literal["staff"]


def sign_token(
    private_key: Ed25519PrivateKey,
    kid: str,
    principal: Principal,
    ttl: timedelta,
) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        **principal.model_dump(exclude_none=True),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public_key))
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}


class TokenVerifier:
    """Verifies tokens against identity's JWKS, fetched lazily and refreshed on an unknown key id."""

    CACHE_SIZE = 10_000

    REFRESH_INTERVAL = 10.0  # at most one fetch per interval, so garbage key ids cannot hammer identity
    RETRY_INTERVAL = 1.0  # after a failed fetch

    def __init__(
        self,
        jwks_url: str | None,
        *,
        static_jwks: dict[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._jwks_url = jwks_url
        self._transport = transport
        self._keys: dict[str, Any] = {}
        self._next_fetch = 0.0
        # One fetch at a time; requests arriving meanwhile wait for its keys instead of failing.
        self._refreshing = asyncio.Lock()
        # Verified tokens until they expire: a portal session sends the same token many times and
        # a signature check is most of an API call's CPU. Bounded; oldest entries go first.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        if static_jwks:
            self._load(static_jwks)

    def _load(self, jwks: dict[str, Any]) -> None:
        keys = {}
        for jwk in jwks.get("keys", []):
            keys[jwk["kid"]] = jwt.PyJWK.from_dict(jwk).key
        self._keys = keys

    async def _refresh(self) -> None:
        if self._jwks_url is None:
            return
        async with self._refreshing:
            if time.monotonic() < self._next_fetch:
                return  # fetched moments ago (perhaps while this request waited for the lock)
            try:
                async with httpx.AsyncClient(timeout=5, transport=self._transport) as client:
                    response = await client.get(self._jwks_url)
                    response.raise_for_status()
                    self._load(response.json())
            except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWKError) as exc:
                self._next_fetch = time.monotonic() + self.RETRY_INTERVAL
                # Not the caller's fault: their token may well be valid.
                raise IdentityUnavailable() from exc
            self._next_fetch = time.monotonic() + self.REFRESH_INTERVAL

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        principal, expires = await self._verify(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            if kid not in self._keys:
                await self._refresh()
            key = self._keys.get(kid)
            if key is None:
                raise jwt.InvalidTokenError("unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
            return _typed(Principal.model_validate(claims)), float(claims["exp"])
        except (jwt.InvalidTokenError, ValidationError) as exc:
            raise InvalidToken() from exc


def _typed(principal: Principal) -> Principal:
    """The principal as a ParentPrincipal or StaffPrincipal when it is one (checked once per token, as
    it is cached, rather than re-validated on every request)."""
    fields = dict(principal)  # field values as they are (nested ClientRefs stay models)
    if principal.role == "parent" and principal.client_id is not None:
        return ParentPrincipal.model_construct(**fields)
    if principal.role == "staff":
        return StaffPrincipal.model_construct(**fields)
    return principal


class InvalidToken(HTTPException):
    def __init__(self) -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED,
            detail="invalid or expired token",
            headers={"WWW-Authenticate": "Bearer"},
        )


class IdentityUnavailable(HTTPException):
    """identity's signing keys could not be fetched: 503, as for any dependency that is down."""

    def __init__(self) -> None:
        super().__init__(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="identity temporarily unavailable",
            headers={"Retry-After": "5"},
        )


_bearer = HTTPBearer(auto_error=False)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _verified(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        raise InvalidToken()
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(credentials.credentials)


async def current_principal(request: Request, credentials: Credentials) -> Principal:
    return await _verified(request, credentials)


async def current_parent(request: Request, credentials: Credentials) -> ParentPrincipal:
    principal = await _verified(request, credentials)
    if not isinstance(principal, ParentPrincipal):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a parent's token is required")
    return principal


async def current_staff(request: Request, credentials: Credentials) -> StaffPrincipal:
    principal = await _verified(request, credentials)
    if not isinstance(principal, StaffPrincipal):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a clinic staff token is required")
    return principal


class _BearerPrincipal(HTTPBearer):
    """The bearer scheme and the check of its token as one dependency.

    Each level of dependencies costs FastAPI a resolution on every request (a third of a small
    endpoint's framework time), so rather than a function depending on `_bearer`, the scheme itself
    verifies. Being an HTTPBearer, it is documented in OpenAPI as the same "HTTPBearer" scheme.
    """

    def __init__(
        self, check: Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]
    ) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer")
        self._check = check

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        return await self._check(request, await super().__call__(request))


CurrentParent = Annotated[ParentPrincipal, Depends(_BearerPrincipal(current_parent))]
CurrentStaff = Annotated[StaffPrincipal, Depends(_BearerPrincipal(current_staff))]
