"""Shared pieces of the contract tests: the services, how to build them offline, sample events."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker

from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import (
    AppointmentAnswered,
    AppointmentBooked,
    AppointmentBookingRejected,
    AppointmentCancelled,
    AppointmentRequestAnswered,
    AppointmentRequested,
    AppointmentUpserted,
    ClientDataErased,
    ClientEnrolledInProgram,
    ClientErasureRequested,
    ClientMessageSent,
    ClientRemoved,
    ClientUpserted,
    ClinicRegistered,
    ClinicSettingsChanged,
    Event,
    FormAssigned,
    FormSubmitted,
    MedicationPrescribed,
    MessageRead,
    MessageReceived,
    PatientDeceased,
    PatientRemoved,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
    RefillRequestDecided,
    RefillRequested,
    ReminderSent,
    RequestAnswerSeen,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    SmsOptedIn,
    SmsOptedOut,
    SmsReceived,
    VaccinationRecorded,
    VaccinationRemoved,
)
from petportal_schemas.records import AppointmentVisibility

# Every deployable that talks Kafka. Listed explicitly: a service that cannot be imported or built
# fails its contract tests, it is never skipped.
SERVICES = ("identity", "pets", "messaging", "todo", "sync", "notify")

REPO = Path(__file__).resolve().parents[2]
JSONSCHEMA_DIR = REPO / "shared" / "schemas" / "jsonschema"
PUBLISHER_PREFIX = "Envelope carrying one of: "  # petportal_runtime.broker.document_publisher


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", SERVICES)


_AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
_SAMPLES: tuple[Event, ...] = (
    MessageReceived(conversation_id=uuid.UUID(int=1), message_id=uuid.UUID(int=2), sent_at=_AT),
    MessageRead(
        conversation_id=uuid.UUID(int=1), message_ids=[uuid.UUID(int=2), uuid.UUID(int=3)], read_at=_AT
    ),
    ClientMessageSent(conversation_id=uuid.UUID(int=1), message_id=uuid.UUID(int=4), sent_at=_AT),
    SmsOptedOut(source="sms_keyword", keyword="STOP"),
    SmsOptedIn(source="portal"),
    ReminderSent(reminder_id="rem-1", channel="sms", kind="service", patient_id="pat-1"),
    ClinicRegistered(name="Happy Paws", pims="ezyvet", sms_number="+15555550100", timezone="America/Chicago"),
    ClientUpserted(first_name="Ada", last_name="Lovelace", email="ada@example.com", phone="+15555550123"),
    PatientUpserted(
        patient_id="pat-1",
        name="Rex",
        species="canine",
        breed="Labrador",
        sex="male neutered",
        date_of_birth=date(2020, 1, 2),
        colour="black",
        weight_kg=31.5,
        microchip="985112345678901",
    ),
    ProgramOffered(program_code="care-plan", name="Care plan", call_to_action="Join the Care plan"),
    ProgramWithdrawn(program_code="care-plan"),
    ClientEnrolledInProgram(program_code="care-plan"),
    ClientRemoved(reason="missing_from_snapshot"),
    AppointmentBooked(
        booking_id=uuid.UUID("3c9e7a1d-5b2f-4e8a-9c1d-2e3f4a5b6c7d"),
        slot_id="SLOT-12",
        patient_id="P-1",
        starts_at=datetime(2026, 12, 10, 15, 30, tzinfo=UTC),
        duration_minutes=30,
        timezone="America/Chicago",
        appointment_type="Exam",
        booked_at=datetime(2026, 12, 4, 9, 5, tzinfo=UTC),
    ),
    AppointmentBookingRejected(
        booking_id=uuid.UUID("3c9e7a1d-5b2f-4e8a-9c1d-2e3f4a5b6c7d"),
        patient_id="P-1",
        starts_at=datetime(2026, 12, 10, 15, 30, tzinfo=UTC),
        timezone="America/Chicago",
        reason="slot_unavailable",
        rejected_at=datetime(2026, 12, 4, 9, 5, tzinfo=UTC),
    ),
    AppointmentAnswered(
        appointment_id="A-7",
        patient_id="P-1",
        answer="confirm",
        answered_at=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
    ),
    AppointmentRequested(
        request_id=uuid.UUID("5d0c8f0e-2b7a-4c1e-9f3a-7b6e5d4c3b2a"),
        patient_id="P-1",
        preferred_times=[datetime(2026, 12, 10, 15, 30, tzinfo=UTC)],
        requested_at=datetime(2026, 12, 4, 8, 0, tzinfo=UTC),
    ),
    AppointmentRequestAnswered(
        request_id=uuid.UUID("5d0c8f0e-2b7a-4c1e-9f3a-7b6e5d4c3b2a"),
        patient_id="P-1",
        outcome="accepted",
        appointment_at=datetime(2026, 12, 10, 15, 30, tzinfo=UTC),
        answered_at=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
    ),
    RefillRequested(
        request_id=uuid.UUID("6e1d9f1f-3c8b-4d2f-8a4b-8c7f6e5d4c3b"),
        patient_id="P-1",
        prescription_id="RX-9",
        requested_at=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
    ),
    RefillRequestDecided(
        request_id=uuid.UUID("6e1d9f1f-3c8b-4d2f-8a4b-8c7f6e5d4c3b"),
        patient_id="P-1",
        prescription_id="RX-9",
        outcome="approved",
        decided_at=datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
    ),
    RequestAnswerSeen(
        request_id=uuid.UUID("6e1d9f1f-3c8b-4d2f-8a4b-8c7f6e5d4c3b"),
        kind="refill",
        seen_at=datetime(2026, 12, 4, 11, 0, tzinfo=UTC),
    ),
    FormAssigned(
        assignment_id=uuid.UUID("7f2e0a2a-4d9c-4e3a-9b5c-9d8a7f6e5d4c"),
        form_id=uuid.UUID("8a3f1b3b-5e0d-4f4b-8c6d-0e9b8a7f6e5d"),
        version=2,
        title="Surgery consent",
        patient_id="P-1",
        appointment_id="A-7",
        assigned_at=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
    ),
    FormSubmitted(
        assignment_id=uuid.UUID("7f2e0a2a-4d9c-4e3a-9b5c-9d8a7f6e5d4c"),
        submission_id=uuid.UUID("9b4a2c4c-6f1e-4a5c-9d7e-1f0c9b8a7f6e"),
        form_id=uuid.UUID("8a3f1b3b-5e0d-4f4b-8c6d-0e9b8a7f6e5d"),
        version=2,
        patient_id="P-1",
        appointment_id="A-7",
        submitted_at=datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
    ),
    ClientErasureRequested(erasure_id=uuid.UUID("0b6f3a52-8f0e-4d0a-9a54-1f3f2b7c9d11")),
    ClientDataErased(erasure_id=uuid.UUID("0b6f3a52-8f0e-4d0a-9a54-1f3f2b7c9d11"), service="pets"),
    SmsReceived(
        text_id=uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        body="Can I bring Rex in on Friday?",
        received_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    ),
    PatientRemoved(patient_id="pat-1", reason="deleted_in_pims"),
    PatientDeceased(patient_id="pat-1", deceased_on=date(2026, 3, 1)),
    AppointmentUpserted(
        appointment_id="appt-1",
        patient_id="pat-1",
        starts_at=datetime(2026, 5, 4, 15, 30, tzinfo=UTC),
        duration_minutes=20,
        timezone="America/Chicago",
        appointment_type="Vaccination",
        reason="Annual boosters",
        provider="Dr. Lee",
    ),
    AppointmentCancelled(appointment_id="appt-1", patient_id="pat-1"),
    ServiceReminderUpserted(
        reminder_id="rem-1",
        patient_id="pat-1",
        service="Rabies booster",
        service_code="RAB3",
        due_on=date(2026, 6, 1),
    ),
    ServiceReminderCompleted(reminder_id="rem-1", patient_id="pat-1", reason="booked"),
    VaccinationRecorded(
        vaccination_id="vac-1",
        patient_id="pat-1",
        name="Rabies (3 year)",
        given_on=date(2025, 6, 1),
        expires_on=date(2028, 6, 1),
        lot="L123",
        rabies_tag="RT-4471",
        certificate_number="CERT-99",
    ),
    VaccinationRemoved(vaccination_id="vac-1", patient_id="pat-1"),
    MedicationPrescribed(
        prescription_id="rx-1",
        patient_id="pat-1",
        name="Carprofen 75 mg",
        dose="1 tablet by mouth twice daily with food",
        refills_remaining=2,
        prescribed_on=date(2026, 1, 10),
    ),
    ClinicSettingsChanged(
        appointment_visibility=AppointmentVisibility(hidden_types=["Euthanasia"]),
        booking_mode="request",
        live_chat=True,
        help_text="Call us at 555-0100 during opening hours.",
        phone="+15555550100",
    ),
)


@pytest.fixture(scope="session")
def samples() -> dict[tuple[str, int], Event]:
    """One valid instance of every event model, by (type, version)."""
    return {(e.EVENT_TYPE, e.VERSION): e for e in _SAMPLES}


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"petportal_{service}.settings")
    found = [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and issubclass(cls, ServiceSettings)
        and cls is not ServiceSettings
        and cls.__module__ == module.__name__
    ]
    assert len(found) == 1, (
        f"petportal_{service}.settings should define one ServiceSettings subclass: {found}"
    )
    return found[0]


def build_runtime(service: str, workdir: Path) -> ServiceRuntime:
    """The service wired by its own `bootstrap.bootstrap(settings)`, with no live infrastructure.

    Settings are given explicitly so the environment (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS...) cannot
    change the documents; unknown keys are ignored by ServiceSettings (extra="ignore").
    """
    settings = settings_class(service)(
        environment="test",
        database_url=f"postgresql+asyncpg://contract@127.0.0.1:1/petportal_{service}",
        kafka_bootstrap_servers="127.0.0.1:19092",
        identity_url="http://127.0.0.1:8081",
        mongodb_url="mongodb://127.0.0.1:27117",
        dev_key_dir=workdir / "keys",
    )
    bootstrap = importlib.import_module(f"petportal_{service}.bootstrap")
    built = bootstrap.bootstrap(settings)
    runtime = built if isinstance(built, ServiceRuntime) else built.runtime
    assert isinstance(runtime, ServiceRuntime), f"petportal_{service}.bootstrap.bootstrap() built no runtime"
    return runtime


@pytest.fixture
def built(tmp_path: Path) -> Iterator[Callable[[str], ServiceRuntime]]:
    runtimes: list[ServiceRuntime] = []

    def build(service: str) -> ServiceRuntime:
        runtimes.append(build_runtime(service, tmp_path))
        return runtimes[-1]

    yield build
    for runtime in runtimes:
        if runtime.engine is not None:
            runtime.engine.sync_engine.dispose()


def declared_publications(broker: KafkaBroker) -> dict[str, list[str]]:
    """{topic: [event types]} as declared with petportal_runtime.broker.document_publisher."""
    declared: dict[str, list[str]] = {}
    for publisher in broker.publishers:
        for spec in publisher.schema().values():
            description: Any = spec.description or ""
            assert description.startswith(PUBLISHER_PREFIX), (
                f"publisher {publisher.topic!r} was not declared with document_publisher: {description!r}"
            )
            names = [n.strip() for n in description.removeprefix(PUBLISHER_PREFIX).split(",") if n.strip()]
            declared.setdefault(publisher.topic, []).extend(names)
    return declared


def render(document: dict[str, Any]) -> str:
    """A document as its snapshot holds it."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def assert_matches_snapshot(snapshot: Path, document: dict[str, Any], what: str, test_file: str) -> None:
    """`document` equals the committed `snapshot`. With UPDATE_SNAPSHOTS=1 a differing snapshot is
    rewritten and the test still fails, so an update is always reviewed."""
    rendered = render(document)
    current = snapshot.read_text() if snapshot.is_file() else None
    if current == rendered:
        return
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(rendered)
        pytest.fail(f"{what} snapshot updated: review the diff and commit it")
    assert current is not None, f"no {what} snapshot: run UPDATE_SNAPSHOTS=1 pytest {test_file}"
    assert current == rendered, f"{what} document changed: review, then UPDATE_SNAPSHOTS=1 pytest {test_file}"
