"""The event contracts: exported JSON Schemas are current, events survive the envelope, bad payloads
are refused, and old versions are upcast."""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from petportal_schemas import (
    ClientUpserted,
    ClinicRegistered,
    Envelope,
    Event,
    SmsOptedOut,
    UnknownEventError,
    envelope,
    parse_payload,
    registered_events,
    topics,
    validate_message,
)
from petportal_schemas.export import render, schemas

from .conftest import JSONSCHEMA_DIR

pytestmark = pytest.mark.contract


def test_exported_json_schemas_are_up_to_date() -> None:
    expected = {name: render(schema) for name, schema in schemas().items()}
    on_disk = {path.name: path.read_text() for path in JSONSCHEMA_DIR.glob("*.json")}

    assert sorted(on_disk) == sorted(expected), (
        "schema files differ from the registered events: run make schemas"
    )
    stale = sorted(name for name in expected if on_disk[name] != expected[name])
    assert not stale, f"stale JSON Schemas {stale}: run make schemas"


def test_every_registered_event_has_a_sample(samples: dict[tuple[str, int], Event]) -> None:
    registered = {(cls.EVENT_TYPE, cls.VERSION) for cls in registered_events()}
    assert registered == set(samples), "add a sample of each new event to tests/contract/conftest.py"


def test_every_registered_event_round_trips_through_the_envelope(
    samples: dict[tuple[str, int], Event],
) -> None:
    for cls in registered_events():
        event = samples[(cls.EVENT_TYPE, cls.VERSION)]
        client_id = None if cls.CLINIC_WIDE else "client-7"
        wrapped = Envelope.wrap(event, clinic_id="clinic-3", client_id=client_id, producer="contract")

        parsed_envelope, parsed_event = validate_message(wrapped.to_bytes())

        assert parsed_envelope == wrapped, cls.EVENT_TYPE
        assert parsed_event == event, cls.EVENT_TYPE
        assert type(parsed_event) is cls
        assert parsed_envelope.topic == cls.TOPIC
        assert cls.TOPIC in topics.ALL
        assert parsed_envelope.key == ("clinic-3" if cls.CLINIC_WIDE else "clinic-3:client-7")


def _raw(event_type: str, payload: dict[str, Any], **overrides: Any) -> bytes:
    message: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "event_version": 1,
        "occurred_at": "2026-03-01T09:30:00Z",
        "clinic_id": "clinic-3",
        "client_id": "client-7",
        "producer": "contract",
        "payload": payload,
        **overrides,
    }
    return json.dumps(message).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_raw("SmsOptedOut", {"source": "carrier-pigeon"}), "source"),
        (_raw("SmsOptedOut", {"source": "portal", "surprise": 1}), "surprise"),
        (_raw("SmsOptedOut", {}), "source"),
        (_raw("ClientUpserted", {"first_name": "Ada", "last_name": "L", "phone": "555-0100"}), "phone"),
        (_raw("SmsOptedOut", {"source": "portal"}, clinic_id="clinic 3"), "clinic_id"),
        (_raw("SmsOptedOut", {"source": "portal"}, event_version=0), "event_version"),
        (_raw("SmsOptedOut", {"source": "portal"}, extra_field=True), "extra_field"),
        (b"not json", "<root>"),
    ],
)
def test_an_envelope_with_a_wrong_payload_or_header_is_rejected(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_message(raw)


def test_unknown_event_types_and_versions_are_rejected() -> None:
    with pytest.raises(UnknownEventError, match="Nonsense v1"):
        validate_message(_raw("Nonsense", {}))
    with pytest.raises(UnknownEventError, match="SmsOptedOut v9"):
        validate_message(_raw("SmsOptedOut", {"source": "portal"}, event_version=9))


def test_wrapping_a_client_event_without_a_client_is_refused() -> None:
    with pytest.raises(ValueError, match="client_id is required"):
        Envelope.wrap(SmsOptedOut(source="portal"), clinic_id="c", client_id=None, producer="contract")
    # Clinic-wide events need none.
    wrapped = Envelope.wrap(
        ClinicRegistered(name="Happy Paws", pims="other"), clinic_id="c", client_id=None, producer="x"
    )
    assert wrapped.key == "c"


def test_event_models_are_strict_about_their_own_fields() -> None:
    with pytest.raises(ValidationError):
        ClientUpserted(first_name="", last_name="L")


def test_old_versions_are_upcast_to_the_newest_registered_version() -> None:
    """A fake ContractProbe v1 → v2 → v3, registered in copies of the registries (restored after)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(envelope, "_REGISTRY", dict(envelope._REGISTRY))
        mp.setattr(envelope, "_UPCASTERS", dict(envelope._UPCASTERS))

        @envelope.register
        class ContractProbeV1(Event):
            EVENT_TYPE: ClassVar[str] = "ContractProbe"
            VERSION: ClassVar[int] = 1
            TOPIC: ClassVar[str] = topics.SYNC
            name: str

        @envelope.register
        class ContractProbeV2(Event):
            EVENT_TYPE: ClassVar[str] = "ContractProbe"
            VERSION: ClassVar[int] = 2
            TOPIC: ClassVar[str] = topics.SYNC
            first_name: str
            last_name: str

        @envelope.register
        class ContractProbeV3(Event):
            EVENT_TYPE: ClassVar[str] = "ContractProbe"
            VERSION: ClassVar[int] = 3
            TOPIC: ClassVar[str] = topics.SYNC
            first_name: str
            last_name: str
            nickname: str | None

        @envelope.upcaster("ContractProbe", 1)
        def split_name(payload: dict[str, Any]) -> dict[str, Any]:
            first, _, last = payload["name"].partition(" ")
            return {"first_name": first, "last_name": last}

        @envelope.upcaster("ContractProbe", 2)
        def add_nickname(payload: dict[str, Any]) -> dict[str, Any]:
            return {**payload, "nickname": None}

        upcast = parse_payload("ContractProbe", 1, {"name": "Ada Lovelace"})
        assert upcast == ContractProbeV3(first_name="Ada", last_name="Lovelace", nickname=None)

        old = Envelope(
            event_type="ContractProbe", event_version=1, clinic_id="c", producer="p", payload={"name": "A B"}
        )
        assert _type_and_fields(validate_message(old.to_bytes())[1]) == (
            "ContractProbeV3",
            {"first_name": "A", "last_name": "B", "nickname": None},
        )
        # The newest version parses as itself, and a bad old payload still fails validation.
        assert type(parse_payload("ContractProbe", 3, upcast.model_dump())) is ContractProbeV3
        with pytest.raises(KeyError):
            parse_payload("ContractProbe", 1, {"nom": "Ada"})

    # The global registries are untouched.
    assert ("ContractProbe", 1) not in envelope._REGISTRY
    assert ("ContractProbe", 1) not in envelope._UPCASTERS
    with pytest.raises(UnknownEventError):
        parse_payload("ContractProbe", 1, {"name": "Ada Lovelace"})


def _type_and_fields(event: Event) -> tuple[str, dict[str, Any]]:
    return type(event).__name__, event.model_dump()
