"""Signing keys and tokens shaped like identity's, for the gateway's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from petportal_runtime.auth import Principal, public_jwk, sign_token


@dataclass
class Keys:
    private_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    kid: str = "test-key-1"

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.private_key.public_key(), self.kid)]}

    def token(self, principal: Principal, ttl: timedelta = timedelta(minutes=5)) -> str:
        return sign_token(self.private_key, self.kid, principal, ttl)

    def parent(self, clinic_id: str = "clinic-1", client_id: str = "client-1") -> str:
        return self.token(Principal(sub="acct-1", role="parent", clinic_id=clinic_id, client_id=client_id))

    def staff(self, clinic_id: str = "clinic-1") -> str:
        return self.token(Principal(sub="staff-1", role="staff", clinic_id=clinic_id))


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()
