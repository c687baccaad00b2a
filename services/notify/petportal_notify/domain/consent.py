"""A client's consent to be contacted, and the guard every SMS goes through."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

# Who last changed consent: the client by keyword or in the portal, clinic staff, or nobody yet.
ConsentSource = Literal["default", "sms_keyword", "portal", "staff"]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Consent:
    """A client with a phone on file may be texted until they opt out (transactional messages)."""

    clinic_id: str
    client_id: str
    sms_opted_in: bool = True
    email_opted_in: bool = True
    source: ConsentSource = "default"
    updated_at: datetime = field(default_factory=now)

    @property
    def sms_opt_out_indicator(self) -> bool:
        return not self.sms_opted_in

    def set_sms(self, opted_in: bool, source: ConsentSource, at: datetime | None = None) -> bool:
        """Apply an SMS opt-in/out; True only when it changed anything (so repeats publish nothing)."""
        if self.sms_opted_in == opted_in:
            return False
        self.sms_opted_in = opted_in
        self.source = source
        self.updated_at = at or now()
        return True

    def set_email(self, opted_in: bool, source: ConsentSource, at: datetime | None = None) -> bool:
        if self.email_opted_in == opted_in:
            return False
        self.email_opted_in = opted_in
        self.source = source
        self.updated_at = at or now()
        return True
