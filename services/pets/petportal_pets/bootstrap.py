"""Wiring: the runtime (PostgreSQL + Kafka) and the PatientUpserted consumer."""

from __future__ import annotations

from dataclasses import dataclass

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, on, subscribe_events
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import PatientUpserted, topics

from .entrypoints import handlers
from .settings import PetsSettings


@dataclass
class PetsService:
    settings: PetsSettings
    runtime: ServiceRuntime


def build_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return ServiceRuntime(settings)


def bootstrap(
    settings: PetsSettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    consumers: bool = True,
) -> PetsService:
    settings = settings or PetsSettings()
    runtime = build_runtime(settings)
    if token_verifier is not None:
        runtime.token_verifier = token_verifier
    if consumers:
        subscribe_events(
            runtime.broker,
            settings,
            [topics.SYNC],
            consumer=handlers.CONSUMER,
            handlers=[on(PatientUpserted, bind(handlers.record_patient, runtime))],
        )
    return PetsService(settings, runtime)
