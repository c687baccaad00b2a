"""Wiring: the runtime (PostgreSQL + Kafka), the unit of work on pets' repositories, the consumer of
sync's patient, clinic and clinical-record events and of identity's erasure requests, and what pets
publishes (erasure confirmations; parents' requests and the clinic's answers, and the clinic's
forms assigned and submitted, on the pets topic).
Tests pass their own pieces (a token verifier, a fake unit of work)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, document_publisher, on, subscribe_events
from petportal_runtime.container import Container
from petportal_runtime.db import replica_name
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import (
    AppointmentCancelled,
    AppointmentRequestAnswered,
    AppointmentRequested,
    AppointmentUpserted,
    ClientDataErased,
    ClientErasureRequested,
    ClientRemoved,
    ClinicRegistered,
    ClinicSettingsChanged,
    FormAssigned,
    FormSubmitted,
    MedicationPrescribed,
    PatientDeceased,
    PatientRemoved,
    PatientUpserted,
    RefillRequestDecided,
    RefillRequested,
    RequestAnswerSeen,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
    VaccinationRecorded,
    VaccinationRemoved,
    topics,
)

from .adapters.overview import SqlOverviewReader
from .adapters.repository import sql_repositories
from .entrypoints import handlers
from .service_layer.overview import OverviewReader
from .service_layer.unit_of_work import PetsRepositories, PetsUnitOfWork
from .settings import PetsSettings


@dataclass
class PetsService(Container[PetsSettings, PetsRepositories]):
    # The parent's pets and upcoming appointments in one read (the home screen's part).
    read_overview: OverviewReader


def build_runtime(settings: ServiceSettings, token_verifier: TokenVerifier | None = None) -> ServiceRuntime:
    return ServiceRuntime(settings, token_verifier=token_verifier)


def bootstrap(
    settings: PetsSettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    unit_of_work: Callable[[], PetsUnitOfWork] | None = None,
    read_overview: OverviewReader | None = None,
    consumers: bool = True,
) -> PetsService:
    settings = settings or PetsSettings()
    runtime = build_runtime(settings, token_verifier)
    if read_overview is None:
        reader = SqlOverviewReader.for_database(
            settings.database_url,
            timeout=settings.dependency_timeout_seconds,
            application_name=replica_name(settings.service_name),
        )
        runtime.closing.append(reader.close)
        read_overview = reader
    service = PetsService(
        settings, runtime, unit_of_work or (lambda: runtime.unit_of_work(sql_repositories)), read_overview
    )
    if consumers:
        subscribe_events(
            runtime.broker,
            settings,
            [topics.SYNC, topics.IDENTITY],
            consumer=handlers.CONSUMER,
            handlers=[
                on(PatientUpserted, bind(handlers.record_patient, service.unit_of_work)),
                on(PatientRemoved, bind(handlers.record_pet_gone, service.unit_of_work)),
                on(PatientDeceased, bind(handlers.record_pet_gone, service.unit_of_work)),
                on(ClientRemoved, bind(handlers.record_pet_gone, service.unit_of_work)),
                on(ClientErasureRequested, bind(handlers.erase_client, service.unit_of_work)),
                on(ClinicRegistered, bind(handlers.record_clinic, service.unit_of_work)),
                on(ClinicSettingsChanged, bind(handlers.record_clinic, service.unit_of_work)),
                on(AppointmentUpserted, bind(handlers.record_clinical, service.unit_of_work)),
                on(AppointmentCancelled, bind(handlers.record_clinical, service.unit_of_work)),
                on(ServiceReminderUpserted, bind(handlers.record_clinical, service.unit_of_work)),
                on(ServiceReminderCompleted, bind(handlers.record_clinical, service.unit_of_work)),
                on(VaccinationRecorded, bind(handlers.record_clinical, service.unit_of_work)),
                on(VaccinationRemoved, bind(handlers.record_clinical, service.unit_of_work)),
                on(MedicationPrescribed, bind(handlers.record_clinical, service.unit_of_work)),
            ],
        )
    document_publisher(runtime.broker, topics.ERASURE, [ClientDataErased])
    document_publisher(
        runtime.broker,
        topics.PETS,
        [
            AppointmentRequested,
            AppointmentRequestAnswered,
            RefillRequested,
            RefillRequestDecided,
            RequestAnswerSeen,
            FormAssigned,
            FormSubmitted,
        ],
    )
    return service
