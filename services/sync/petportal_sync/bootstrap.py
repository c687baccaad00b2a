"""Wiring: settings → runtime (database, broker, outbox relay) and what sync publishes."""

from __future__ import annotations

from dataclasses import dataclass

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import document_publisher
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import (
    ClientEnrolledInProgram,
    ClientUpserted,
    ClinicRegistered,
    Event,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
    topics,
)

from .settings import SyncSettings

PUBLISHES: list[type[Event]] = [
    ClinicRegistered,
    ClientUpserted,
    PatientUpserted,
    ProgramOffered,
    ProgramWithdrawn,
    ClientEnrolledInProgram,
]


@dataclass
class Sync:
    settings: SyncSettings
    runtime: ServiceRuntime


def build_runtime(settings: ServiceSettings, token_verifier: TokenVerifier | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, token_verifier=token_verifier)
    document_publisher(runtime.broker, topics.SYNC, PUBLISHES)
    return runtime


def bootstrap(settings: SyncSettings | None = None, *, token_verifier: TokenVerifier | None = None) -> Sync:
    """`token_verifier`: sync's routes authenticate PIMS connectors by API key, not by token; it is
    taken for the one bootstrap shape every service has."""
    settings = settings or SyncSettings()
    return Sync(settings=settings, runtime=build_runtime(settings, token_verifier))
