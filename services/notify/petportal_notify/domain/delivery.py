"""Deliveries: one message to one client on one channel, from queued to a final state.

A delivery is created once per idempotency key, so a redelivered event or a retried request never
makes a second one. The send decision is taken when the dispatcher claims it, against the client's
consent at that moment; after that, the provider is called at most once per attempt, and an attempt
whose outcome is unknown (the process died mid-send, the provider timed out after receiving the
request) is never repeated: nothing is sent twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

Channel = Literal["email", "sms"]
CHANNELS: tuple[Channel, ...] = ("email", "sms")


class Status(StrEnum):
    QUEUED = "queued"  # waiting for its time (or its next attempt)
    SENDING = "sending"  # claimed by a dispatcher; the provider is being called
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the provider's status callback says it arrived
    UNDELIVERED = "undelivered"  # accepted, then the carrier could not deliver it (status callback)
    FAILED = "failed"  # the provider refused it for good (invalid number, unsubscribed recipient)
    SUPPRESSED = "suppressed"  # the client had opted out of the channel when it was due
    SKIPPED = "skipped"  # nothing to send to: no or an invalid address or number
    CANCELLED = "cancelled"  # no longer wanted (the service was booked, the appointment cancelled)
    DEAD = "dead"  # the provider kept failing; given up after the last attempt
    UNKNOWN = "unknown"  # the attempt's outcome is unknown; never retried, so never sent twice


FINAL = frozenset(Status) - {Status.QUEUED, Status.SENDING}


class Template(StrEnum):
    SIGN_IN_CODE = "sign_in_code"
    ERASURE_CODE = "erasure_code"
    NEW_MESSAGES = "new_messages"
    SERVICE_REMINDER = "service_reminder"
    APPOINTMENT_REMINDER = "appointment_reminder"
    REQUEST_ANSWERED = "request_answered"  # the clinic answered an appointment request
    REFILL_DECIDED = "refill_decided"  # the clinic approved or denied a refill request
    BOOKING_ANSWERED = "booking_answered"  # the clinic's system took or refused an online booking


REMINDERS = frozenset({Template.SERVICE_REMINDER, Template.APPOINTMENT_REMINDER})
# One-time codes: their values are cleared once sent, and their emails have no opt-out footer.
CODES = frozenset({Template.SIGN_IN_CODE, Template.ERASURE_CODE})


@dataclass
class Delivery:
    key: str  # the idempotency key
    clinic_id: str
    client_id: str
    channel: Channel
    template: Template
    params: dict[str, Any]
    not_before: datetime
    id: int | None = None
    status: Status = Status.QUEUED
    attempts: int = 0
    # What it is about, for reminders (ReminderSent) and cancellations: ("service", reminder id).
    subject_kind: str | None = None
    subject_id: str | None = None
    patient_id: str | None = None
    reason: str | None = None
    provider_id: str | None = None


@dataclass(frozen=True)
class Finish:
    """How an attempt (or a decision not to send) leaves a delivery."""

    delivery_id: int
    status: Status
    reason: str | None = None
    provider_id: str | None = None
    not_before: datetime | None = None  # the next attempt, for a delivery queued again
    clear_params: bool = False  # a sign-in code's values go once the delivery has ended


@dataclass(frozen=True)
class Contact:
    """Where a client is reached, and whether they let the clinic reach them there."""

    email: str | None
    phone: str | None
    email_opted_in: bool
    sms_opted_in: bool

    def opted_in(self, channel: Channel) -> bool:
        return self.email_opted_in if channel == "email" else self.sms_opted_in

    def address(self, channel: Channel) -> str | None:
        return self.email if channel == "email" else self.phone


@dataclass(frozen=True)
class ClinicProfile:
    """What the templates say about the clinic, and where its texts come from."""

    clinic_id: str
    name: str
    sms_number: str | None = None
    timezone: str = "UTC"
    help_text: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """A rendered message, ready for a channel."""

    delivery_id: int
    channel: Channel
    to: str
    sender: str | None  # the clinic's number for SMS; the service's address for email
    subject: str | None
    body: str
    sender_name: str | None = None


class Provider(Protocol):
    """A channel's provider: SMTP for email, Twilio's API for SMS (adapters/channels.py)."""

    async def send(self, message: Outgoing) -> str:
        """Hand the message over; the provider's id for it (status callbacks name it), or
        `ProviderError`."""
        ...

    async def close(self) -> None: ...


class ProviderError(Exception):
    """A channel's provider refused or failed. `code` is safe to record (no personal data);
    `retryable` says whether another attempt may succeed; `outcome_unknown` that the provider may have
    accepted it (so it must not be retried)."""

    def __init__(self, code: str, *, retryable: bool, outcome_unknown: bool = False) -> None:
        super().__init__(code)
        self.code = code[:200]
        self.retryable = retryable and not outcome_unknown
        self.outcome_unknown = outcome_unknown


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    first_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: doubling from `first_delay`, capped, with
        ±jitter so a provider outage does not end in a synchronised burst."""
        base: timedelta = min(self.first_delay * (2 ** max(attempts - 1, 0)), self.max_delay)
        return base * (1 + self.jitter * (2 * self.rng.random() - 1))

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


def decide(delivery: Delivery, contact: Contact | None) -> tuple[Status, str | None]:
    """Whether a due delivery goes out, taken against the client's consent as it is now: SENDING, or
    the final state it ends in instead and why."""
    if contact is None:
        return Status.SKIPPED, "unknown_client"
    if not contact.opted_in(delivery.channel):
        return Status.SUPPRESSED, "opted_out"
    address = contact.address(delivery.channel)
    if not address:
        return Status.SKIPPED, f"no_{'email' if delivery.channel == 'email' else 'phone'}"
    if delivery.channel == "email" and not valid_email(address):
        return Status.SKIPPED, "invalid_email"
    return Status.SENDING, None


def valid_email(address: str) -> bool:
    """Syntax only (no DNS lookup on the hot path); the SMTP server has the last word."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True
