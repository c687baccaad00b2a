"""Clinic API keys: shown once, stored only as a SHA-256 hash (they are long random tokens, so a
fast hash is enough and lets us look a key up by its hash)."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "ppk_"


def generate_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(PREFIX) and 20 <= len(value) <= 200
