"""Pet Portal event contracts. The only code, with petportal_runtime, that every service imports."""

from . import topics
from .envelope import (
    Envelope,
    Event,
    TraceContext,
    UnknownEventError,
    event_class,
    parse_payload,
    partition_key,
    registered_events,
    upcaster,
    validate_message,
)
from .events import (
    ClientEnrolledInProgram,
    ClientUpserted,
    ClinicRegistered,
    MessageRead,
    MessageReceived,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
    ReminderSent,
    SmsOptedIn,
    SmsOptedOut,
)

__all__ = [
    "ClientEnrolledInProgram",
    "ClientUpserted",
    "ClinicRegistered",
    "Envelope",
    "Event",
    "MessageRead",
    "MessageReceived",
    "PatientUpserted",
    "ProgramOffered",
    "ProgramWithdrawn",
    "ReminderSent",
    "SmsOptedIn",
    "SmsOptedOut",
    "TraceContext",
    "UnknownEventError",
    "event_class",
    "parse_payload",
    "partition_key",
    "registered_events",
    "topics",
    "upcaster",
    "validate_message",
]
