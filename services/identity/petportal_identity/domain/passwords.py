"""Password hashing with scrypt (stdlib). Stored as `scrypt$n$r$p$salt$hash` (base64), so the
parameters can be raised later without invalidating existing hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MIN_LENGTH = 8
MAX_LENGTH = 1024


@dataclass(frozen=True)
class ScryptParams:
    n: int = 2**14
    r: int = 8
    p: int = 1
    dklen: int = 32


DEFAULT_PARAMS = ScryptParams()


class WeakPasswordError(ValueError):
    pass


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        dklen=params.dklen,
        maxmem=256 * params.r * params.n + 1024 * 1024,
    )


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"password must be at most {MAX_LENGTH} characters")


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, params)
    return f"scrypt${params.n}${params.r}${params.p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison; False (never an exception) for a malformed stored hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        params = ScryptParams(int(n), int(r), int(p), len(expected))
        actual = _derive(password[:MAX_LENGTH], _unb64(salt), params)
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Verified against when the email is unknown, so both failures take about as long.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
