"""Wiring: settings → runtime (database, broker, outbox relay), the unit of work on sync's repositories,
what sync publishes and its consumer (identity's erasure requests; pets' refill requests and submitted
forms, for the outbound queue). Tests pass their own pieces (a fake unit of work)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, document_publisher, on, subscribe_events
from petportal_runtime.container import Container
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import (
    AppointmentRequested,
    ClientDataErased,
    ClientEnrolledInProgram,
    ClientErasureRequested,
    ClientUpserted,
    ClinicRegistered,
    Event,
    FormSubmitted,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
    RefillRequested,
    booking,
    records,
    topics,
)

from .adapters.repository import sql_repositories
from .entrypoints import handlers
from .service_layer.booking import watch_backlog
from .service_layer.unit_of_work import SyncRepositories, SyncUnitOfWork
from .settings import SyncSettings

PUBLISHES: list[type[Event]] = [
    ClinicRegistered,
    ClientUpserted,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
    ClientEnrolledInProgram,
    *records.PUBLISHED_BY_SYNC,
    *booking.PUBLISHED_BY_SYNC,
]


@dataclass
class Sync(Container[SyncSettings, SyncRepositories]):
    pass


def build_runtime(settings: ServiceSettings, token_verifier: TokenVerifier | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, token_verifier=token_verifier)
    document_publisher(runtime.broker, topics.SYNC, PUBLISHES)
    # Erasure confirmations go to the erasure topic, which every erasing service publishes on.
    document_publisher(runtime.broker, topics.ERASURE, [ClientDataErased])
    return runtime


def bootstrap(
    settings: SyncSettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    unit_of_work: Callable[[], SyncUnitOfWork] | None = None,
    broker: bool = True,
) -> Sync:
    """`token_verifier`: sync's routes authenticate PIMS connectors by API key, not by token; it is
    taken for the one bootstrap shape every service has. `broker=False` for one-off commands
    (`create-clinic`): no consumer, and the events they stage are relayed by the running service."""
    settings = settings or SyncSettings()
    if broker:
        runtime = build_runtime(settings, token_verifier)
    else:
        runtime = ServiceRuntime(settings, token_verifier=token_verifier, broker=False)
    sync = Sync(settings, runtime, unit_of_work or (lambda: runtime.unit_of_work(sql_repositories)))
    if broker:
        subscribe_events(
            runtime.broker,
            settings,
            [topics.IDENTITY, topics.PETS],
            consumer=handlers.CONSUMER,
            handlers=[
                on(ClientErasureRequested, bind(handlers.erase_client, sync.unit_of_work)),
                on(AppointmentRequested, bind(handlers.queue_for_pims, sync.unit_of_work)),
                on(RefillRequested, bind(handlers.queue_for_pims, sync.unit_of_work)),
                on(FormSubmitted, bind(handlers.queue_for_pims, sync.unit_of_work)),
            ],
        )
        runtime.background.append(partial(watch_backlog, sync.unit_of_work, timedelta(seconds=15)))
    return sync
