"""The token signing key: an Ed25519 key pair and its key id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from petportal_runtime.auth import public_jwk


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def kid(self) -> str:
        return key_id(self.public_key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.public_key, self.kid)]}

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key")
        return cls(key)


@dataclass(frozen=True)
class KeySet:
    """The key that signs, and the previous ones still published during a rotation's overlap (their
    tokens verify until they expire; nothing new is signed with them)."""

    current: SigningKey
    previous: tuple[Ed25519PublicKey, ...] = ()

    def jwks(self) -> dict[str, Any]:
        keys = [public_jwk(self.current.public_key, self.current.kid)]
        seen = {self.current.kid}
        for public in self.previous:
            kid = key_id(public)
            if kid not in seen:
                seen.add(kid)
                keys.append(public_jwk(public, kid))
        return {"keys": keys}


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file holding the public key or the (old) private key."""
    if b"PRIVATE KEY" in pem:
        return SigningKey.from_pem(pem).public_key
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("a previous signing key must be an Ed25519 key")
    return key
