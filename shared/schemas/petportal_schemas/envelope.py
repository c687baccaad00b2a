"""The envelope every event travels in, and the registry that maps (type, version) to a model."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Identifiers that come from a PIMS: short, printable, no separators that would clash with our keys.
ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class TraceContext(BaseModel):
    """W3C trace context of the operation that caused the event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    traceparent: str | None = None
    tracestate: str | None = None


class Event(BaseModel):
    """Base class of every event payload. Subclasses set EVENT_TYPE, VERSION and TOPIC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    EVENT_TYPE: ClassVar[str]
    VERSION: ClassVar[int]
    TOPIC: ClassVar[str]
    # True when the event concerns a whole clinic rather than one client.
    CLINIC_WIDE: ClassVar[bool] = False


class Envelope(BaseModel):
    """What is written to Kafka: metadata plus the event payload as a plain dict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str = Field(min_length=1, max_length=100)
    event_version: int = Field(ge=1)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    clinic_id: str = Field(pattern=ID_PATTERN)
    client_id: str | None = Field(default=None, pattern=ID_PATTERN)
    producer: str = Field(min_length=1, max_length=50)
    trace: TraceContext = Field(default_factory=TraceContext)
    payload: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        clinic_id: str,
        client_id: str | None,
        producer: str,
        trace: TraceContext | None = None,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Self:
        """`event_id`: one of `new_event_ids`, for many events at once; a new one by default."""
        if not event.CLINIC_WIDE and client_id is None:
            raise ValueError(f"{event.EVENT_TYPE} concerns one client: client_id is required")
        return cls(
            event_id=event_id or uuid.uuid4(),
            event_type=event.EVENT_TYPE,
            event_version=event.VERSION,
            clinic_id=clinic_id,
            client_id=client_id,
            producer=producer,
            trace=trace or TraceContext(),
            occurred_at=occurred_at or datetime.now(UTC),
            payload=event.model_dump(mode="json"),
        )

    @property
    def key(self) -> str:
        """Kafka partition key: one parent's events stay in order."""
        return partition_key(self.clinic_id, self.client_id)

    @property
    def topic(self) -> str:
        return event_class(self.event_type, self.event_version).TOPIC

    def event(self) -> Event:
        """The payload parsed into its versioned model (upcast to the newest version if needed)."""
        return parse_payload(self.event_type, self.event_version, self.payload)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        return cls.model_validate_json(raw)


def new_event_ids(count: int) -> list[uuid.UUID]:
    """`count` random (version 4) UUIDs like `uuid.uuid4`'s, from one read of the system's random
    source rather than a read (a system call) for each."""
    random = os.urandom(16 * count)
    return [uuid.UUID(bytes=random[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


def partition_key(clinic_id: str, client_id: str | None) -> str:
    return clinic_id if client_id is None else f"{clinic_id}:{client_id}"


E = TypeVar("E", bound=type[Event])

_REGISTRY: dict[tuple[str, int], type[Event]] = {}
# Upcasters turn an old payload version into the next one: (type, old_version) -> fn(payload) -> payload.
_UPCASTERS: dict[tuple[str, int], Any] = {}


def register(cls: E) -> E:
    key = (cls.EVENT_TYPE, cls.VERSION)
    if key in _REGISTRY:
        raise ValueError(f"event {key} registered twice")
    _REGISTRY[key] = cls
    return cls


def upcaster(event_type: str, from_version: int) -> Any:
    def decorate(fn: Any) -> Any:
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return decorate


class UnknownEventError(ValueError):
    pass


def event_class(event_type: str, version: int) -> type[Event]:
    try:
        return _REGISTRY[(event_type, version)]
    except KeyError:
        raise UnknownEventError(f"unknown event {event_type} v{version}") from None


def registered_events() -> list[type[Event]]:
    return sorted(_REGISTRY.values(), key=lambda c: (c.TOPIC, c.EVENT_TYPE, c.VERSION))


def parse_payload(event_type: str, version: int, payload: dict[str, Any]) -> Event:
    while (event_type, version) in _UPCASTERS and (event_type, version + 1) in _REGISTRY:
        payload = _UPCASTERS[(event_type, version)](payload)
        version += 1
    return event_class(event_type, version).model_validate(payload)


def validate_message(raw: bytes) -> tuple[Envelope, Event]:
    """Parse raw Kafka bytes into envelope and event; raises ValueError with a readable reason."""
    try:
        envelope = Envelope.from_bytes(raw)
        return envelope, envelope.event()
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
