import asyncio
from datetime import timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import HTTPException

from petportal_runtime.auth import (
    ClientRef,
    ParentPrincipal,
    Principal,
    TokenVerifier,
    public_jwk,
    sign_token,
)

pytestmark = pytest.mark.unit


def _verifier(key: Ed25519PrivateKey, kid: str = "k1") -> TokenVerifier:
    return TokenVerifier(None, static_jwks={"keys": [public_jwk(key.public_key(), kid)]})


# Verified tokens come back typed: a parent's as a ParentPrincipal.
PARENT = ParentPrincipal(sub="acct-1", role="parent", clinic_id="demo", client_id="C-1")


async def test_a_token_signed_by_the_published_key_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    token = sign_token(key, "k1", PARENT, timedelta(minutes=5))
    assert await _verifier(key).verify(token) == PARENT


async def test_a_token_signed_by_another_key_is_refused() -> None:
    token = sign_token(Ed25519PrivateKey.generate(), "k1", PARENT, timedelta(minutes=5))
    with pytest.raises(HTTPException) as exc:
        await _verifier(Ed25519PrivateKey.generate()).verify(token)
    assert exc.value.status_code == 401


async def test_an_expired_token_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    token = sign_token(key, "k1", PARENT, timedelta(seconds=-1))
    with pytest.raises(HTTPException):
        await _verifier(key).verify(token)


async def test_an_unknown_key_id_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    token = sign_token(key, "other", PARENT, timedelta(minutes=5))
    with pytest.raises(HTTPException):
        await _verifier(key, "k1").verify(token)


async def test_a_cached_token_is_refused_once_it_expires() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = _verifier(key)
    token = sign_token(key, "k1", PARENT, timedelta(seconds=1))
    assert await verifier.verify(token) == PARENT
    assert await verifier.verify(token) == PARENT  # served from the cache
    await asyncio.sleep(1.1)  # PyJWT's expiry has one-second resolution
    with pytest.raises(HTTPException):
        await verifier.verify(token)


async def test_the_cache_stays_bounded() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = _verifier(key)
    verifier.CACHE_SIZE = 3
    for n in range(5):
        principal = Principal(sub=f"acct-{n}", role="parent", clinic_id="demo", client_id="C-1")
        await verifier.verify(sign_token(key, "k1", principal, timedelta(minutes=5)))
    assert len(verifier._verified) == 3


def _jwks_transport(key: Ed25519PrivateKey, *, delay: float = 0.0, fail: bool = False) -> httpx.MockTransport:
    fetches = []

    async def handler(request: httpx.Request) -> httpx.Response:
        fetches.append(request)
        await asyncio.sleep(delay)
        if fail:
            return httpx.Response(502)
        return httpx.Response(200, json={"keys": [public_jwk(key.public_key(), "k1")]})

    transport = httpx.MockTransport(handler)
    transport.fetches = fetches  # type: ignore[attr-defined]
    return transport


async def test_requests_arriving_while_the_keys_are_fetched_wait_for_them_instead_of_failing() -> None:
    key = Ed25519PrivateKey.generate()
    transport = _jwks_transport(key, delay=0.2)
    verifier = TokenVerifier("http://identity/.well-known/jwks.json", transport=transport)
    tokens = [
        sign_token(key, "k1", PARENT.model_copy(update={"sub": f"acct-{n}"}), timedelta(minutes=5))
        for n in range(5)
    ]
    principals = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [p.sub for p in principals] == [f"acct-{n}" for n in range(5)]
    assert len(transport.fetches) == 1  # type: ignore[attr-defined]


async def test_keys_that_cannot_be_fetched_are_a_503_not_a_401() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = TokenVerifier(
        "http://identity/.well-known/jwks.json", transport=_jwks_transport(key, fail=True)
    )
    token = sign_token(key, "k1", PARENT, timedelta(minutes=5))
    with pytest.raises(HTTPException) as refused:
        await verifier.verify(token)
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "5"}


async def test_a_parent_token_carries_every_clinic_where_the_person_is_a_client() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = TokenVerifier(None, static_jwks={"keys": [public_jwk(key.public_key(), "k1")]})
    person = PARENT.model_copy(
        update={
            "clients": (
                ClientRef(clinic_id=PARENT.clinic_id, client_id=PARENT.client_id),
                ClientRef(clinic_id="clinic-2", client_id="C-77"),
            )
        }
    )
    principal = await verifier.verify(sign_token(key, "k1", person, timedelta(minutes=5)))
    assert isinstance(principal, ParentPrincipal)
    assert principal.is_client("clinic-2", "C-77")
    assert principal.is_client(PARENT.clinic_id, PARENT.client_id)
    assert not principal.is_client("clinic-2", PARENT.client_id)
    assert not principal.is_client("clinic-3", "C-77")


async def test_a_token_without_memberships_is_a_client_of_its_selected_clinic_only() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = TokenVerifier(None, static_jwks={"keys": [public_jwk(key.public_key(), "k1")]})
    principal = await verifier.verify(sign_token(key, "k1", PARENT, timedelta(minutes=5)))
    assert isinstance(principal, ParentPrincipal)
    assert principal.memberships == (ClientRef(clinic_id=PARENT.clinic_id, client_id=PARENT.client_id),)
