import asyncio
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import HTTPException

from petportal_runtime.auth import ParentPrincipal, Principal, TokenVerifier, public_jwk, sign_token

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
