"""Passwordless sign-in: the identifier a parent types (the email or mobile number on their clinic's
contact record), the one-time code and magic link sent to it, and the refresh tokens of a signed-in
session.

Secrets (codes, link tokens, refresh tokens) are stored only as keyed hashes. A code is 6 digits,
expires in minutes, is single use, and locks after a few wrong tries; the link is single use too. A
refresh token rotates on every use; presenting one already used revokes its whole family (someone
else has a copy).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from petportal_runtime.auth import ClientRef
from petportal_runtime.phone import InvalidPhoneNumber, normalise_phone

IdentifierKind = Literal["email", "phone"]
ChallengePurpose = Literal["sign_in", "erasure"]
CODE_DIGITS = 6


class InvalidIdentifier(ValueError):
    def __init__(self) -> None:
        super().__init__("enter the email address or mobile number your clinic has for you")


@dataclass(frozen=True)
class Identifier:
    kind: IdentifierKind
    value: str  # lower-cased email, or E.164

    @classmethod
    def parse(cls, raw: str, region: str = "US") -> Identifier:
        text = raw.strip()
        if "@" in text:
            local, _, domain = text.rpartition("@")
            if not local or "." not in domain or len(text) > 254 or any(c.isspace() for c in text):
                raise InvalidIdentifier()
            return cls("email", text.lower())
        try:
            return cls("phone", normalise_phone(text, region))
        except InvalidPhoneNumber:
            raise InvalidIdentifier() from None

    def digest(self, pepper: bytes) -> str:
        """What is stored and rate-limited on: never the identifier itself."""
        return keyed_hash(pepper, f"{self.kind}:{self.value}")


def keyed_hash(pepper: bytes, secret: str) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Attempt(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    LOCKED = "locked"
    USED = "used"


@dataclass
class Challenge:
    """One sign-in request: what was sent and to whom it may sign in. `clients` is empty when the
    identifier matched no contact (the request is answered the same; no code can ever succeed)."""

    identifier_digest: str
    kind: IdentifierKind
    clients: list[ClientRef]
    code_digest: str
    link_digest: str
    expires_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    attempts: int = 0
    used_at: datetime | None = None
    link_used_at: datetime | None = None
    prefill: str | None = None  # a reminder link's identifier, shown once the link is spent
    purpose: ChallengePurpose = "sign_in"

    def try_code(self, code_digest: str, now: datetime, max_attempts: int) -> Attempt:
        """Counts the attempt (even a right code after the lock is refused)."""
        if self.used_at is not None:
            return Attempt.USED
        if self.attempts >= max_attempts:
            return Attempt.LOCKED
        if now >= self.expires_at:
            return Attempt.EXPIRED
        self.attempts += 1
        if not self.clients or not hmac.compare_digest(code_digest, self.code_digest):
            return Attempt.LOCKED if self.attempts >= max_attempts else Attempt.WRONG
        self.used_at = now
        return Attempt.OK

    def try_link(self, now: datetime) -> Attempt:
        if self.link_used_at is not None or self.used_at is not None:
            return Attempt.USED
        if now >= self.expires_at:
            return Attempt.EXPIRED
        if not self.clients:
            return Attempt.WRONG
        self.link_used_at = self.used_at = now
        return Attempt.OK


@dataclass
class RefreshToken:
    """A stored refresh token (by digest), one of a family that began at one sign-in."""

    digest: str
    family_id: uuid.UUID
    person: str  # the identifier's digest: sign out everywhere revokes every family of it
    clients: list[ClientRef]
    selected: ClientRef
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class RefreshOutcome(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REUSED = "reused"  # a rotated token presented again: the family is revoked


def check_refresh(token: RefreshToken | None, now: datetime) -> RefreshOutcome:
    if token is None:
        return RefreshOutcome.UNKNOWN
    if token.revoked_at is not None:
        return RefreshOutcome.REVOKED
    if token.used_at is not None:
        return RefreshOutcome.REUSED
    if now >= token.expires_at:
        return RefreshOutcome.EXPIRED
    return RefreshOutcome.OK


def expiry(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
