"""Clinic API keys: shown once, stored only as a SHA-256 hash (they are long random tokens, so a
fast hash is enough and lets us look a key up by its hash)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

PREFIX = "ppk_"


def generate_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(PREFIX) and 20 <= len(value) <= 200


def key_id(api_key_hash: str) -> str:
    """A key's public name: enough to tell a clinic's keys apart, nothing to sign in with."""
    return api_key_hash[:12]


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def valid(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ApiKeyNotFound(LookupError):
    def __init__(self) -> None:
        super().__init__("no such API key at this clinic")
