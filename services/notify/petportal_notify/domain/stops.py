"""A number that opted out of texts stays opted out after its client is erased (a number that texted
STOP is not texted again until it opts back in): the erasure keeps only a keyed hash of it, per
clinic, and a contact recorded later with that number starts opted out. START (any opt-in keyword)
from the number forgets the hash."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from .consent import Consent


@dataclass(frozen=True)
class PhoneDigests:
    """HMAC-SHA256 of an E.164 number under PHONE_HASH_KEY, in hex: the number cannot be read back from
    it (nor found by hashing every number, without the key), and the same number always gives the same
    digest, so a later contact or text from it is recognised."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("the phone hash key is empty")

    def digest(self, phone: str) -> str:
        """`phone` in E.164 (as contacts and normalised senders are)."""
        return hmac.new(self.key, phone.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SmsStop:
    """A clinic's opted-out number, as kept after its client was erased."""

    clinic_id: str
    phone_digest: str
    opted_out_at: datetime


def stop_to_keep(consent: Consent | None, phone: str | None, digests: PhoneDigests) -> SmsStop | None:
    """What an erasure keeps of a client: the stop of their number if they had opted out of texts
    (nothing if they had not, or had no number)."""
    if consent is None or consent.sms_opted_in or not phone:
        return None
    return SmsStop(consent.clinic_id, digests.digest(phone), consent.updated_at)


def first_consent(clinic_id: str, client_id: str, *, number_stopped: bool) -> Consent:
    """A new contact's consent: opted in to texts (transactional messages), unless their number is one
    the clinic keeps as stopped; then opted out, as by a keyword."""
    consent = Consent(clinic_id=clinic_id, client_id=client_id)
    if number_stopped:
        consent.set_sms(False, "sms_keyword")
    return consent
