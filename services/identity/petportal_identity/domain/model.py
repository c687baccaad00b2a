"""identity's domain values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

AccountOrigin = Literal["reminder", "sign_in", "dev"]

# Same message for an unknown email and a wrong password: no account enumeration.
INVALID_CREDENTIALS = "invalid email or password"


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class Contact:
    clinic_id: str
    client_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class StaffUser:
    """A clinic staff user who signs in with email and password (`email` lower-cased)."""

    clinic_id: str
    email: str
    password_hash: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
