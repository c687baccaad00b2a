"""Wiring: the runtime (PostgreSQL + Kafka), the unit of work on pets' repositories, the
PatientUpserted consumer. Tests pass their own pieces (a token verifier, a fake unit of work)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, on, subscribe_events
from petportal_runtime.container import Container
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import PatientUpserted, topics

from .adapters.repository import sql_repositories
from .entrypoints import handlers
from .service_layer.unit_of_work import PetsRepositories, PetsUnitOfWork
from .settings import PetsSettings


@dataclass
class PetsService(Container[PetsSettings, PetsRepositories]):
    pass


def build_runtime(settings: ServiceSettings, token_verifier: TokenVerifier | None = None) -> ServiceRuntime:
    return ServiceRuntime(settings, token_verifier=token_verifier)


def bootstrap(
    settings: PetsSettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    unit_of_work: Callable[[], PetsUnitOfWork] | None = None,
    consumers: bool = True,
) -> PetsService:
    settings = settings or PetsSettings()
    runtime = build_runtime(settings, token_verifier)
    service = PetsService(settings, runtime, unit_of_work or (lambda: runtime.unit_of_work(sql_repositories)))
    if consumers:
        subscribe_events(
            runtime.broker,
            settings,
            [topics.SYNC],
            consumer=handlers.CONSUMER,
            handlers=[on(PatientUpserted, bind(handlers.record_patient, service.unit_of_work))],
        )
    return service
