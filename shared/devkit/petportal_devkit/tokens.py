"""Tokens for tests, signed as identity signs them (EdDSA, `petportal_runtime.auth.sign_token`).

    minter = TokenMinter()
    app.state.token_verifier = minter.verifier          # or TokenVerifier(None, static_jwks=minter.jwks)
    client.get("/api/v1/pets", headers=minter.parent_headers("clinic-1", "client-1"))

One key pair per minter, generated in memory; nothing is written to disk.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from petportal_runtime.auth import (
    ClientRef,
    ParentPrincipal,
    Principal,
    StaffPrincipal,
    TokenVerifier,
    public_jwk,
    sign_token,
)

__all__ = ["TokenMinter"]


@dataclass
class TokenMinter:
    kid: str = "test-key"
    ttl: timedelta = timedelta(minutes=5)
    private_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def jwks(self) -> dict[str, Any]:
        """The public key as identity serves it at /.well-known/jwks.json."""
        return {"keys": [public_jwk(self.private_key.public_key(), self.kid)]}

    @functools.cached_property
    def verifier(self) -> TokenVerifier:
        """A verifier that trusts this minter's key and fetches nothing."""
        return TokenVerifier(None, static_jwks=self.jwks)

    def token(self, principal: Principal, ttl: timedelta | None = None) -> str:
        return sign_token(self.private_key, self.kid, principal, ttl or self.ttl)

    def parent(
        self,
        clinic_id: str = "clinic-1",
        client_id: str = "client-1",
        *,
        sub: str | None = None,
        clients: tuple[tuple[str, str], ...] = (),
    ) -> str:
        """A parent's token; `clients` are further (clinic_id, client_id) memberships of the same person."""
        principal = ParentPrincipal(
            sub=sub or f"acct-{client_id}",
            role="parent",
            clinic_id=clinic_id,
            client_id=client_id,
            clients=tuple(ClientRef(clinic_id=c, client_id=k) for c, k in ((clinic_id, client_id), *clients)),
        )
        return self.token(principal)

    def staff(self, clinic_id: str = "clinic-1", *, sub: str = "staff-1") -> str:
        return self.token(StaffPrincipal(sub=sub, role="staff", clinic_id=clinic_id))

    def parent_headers(
        self,
        clinic_id: str = "clinic-1",
        client_id: str = "client-1",
        *,
        sub: str | None = None,
        clients: tuple[tuple[str, str], ...] = (),
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.parent(clinic_id, client_id, sub=sub, clients=clients)}"}

    def staff_headers(self, clinic_id: str = "clinic-1", *, sub: str = "staff-1") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff(clinic_id, sub=sub)}"}
