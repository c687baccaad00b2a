"""Wiring: the runtime, the unit of work on notify's repositories, the consumers, the SMS provider and
what is published. Tests pass their own pieces (a token verifier, a fake unit of work, an SMS
provider)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, document_publisher, on, subscribe_events
from petportal_runtime.container import Container
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, ClinicRegistered, SmsOptedIn, SmsOptedOut, SmsReceived, topics

from .adapters.repository import sql_repositories
from .adapters.sms import make_provider
from .domain.sms import SmsProvider
from .entrypoints import handlers
from .service_layer import services
from .service_layer.unit_of_work import NotifyRepositories, NotifyUnitOfWork
from .settings import NotifySettings


@dataclass
class Notify(Container[NotifySettings, NotifyRepositories]):
    sms_provider: SmsProvider


def bootstrap(
    settings: NotifySettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    unit_of_work: Callable[[], NotifyUnitOfWork] | None = None,
    sms_provider: SmsProvider | None = None,
) -> Notify:
    settings = settings or NotifySettings()
    runtime = ServiceRuntime(settings, token_verifier=token_verifier)
    notify = Notify(
        settings,
        runtime,
        unit_of_work or (lambda: runtime.unit_of_work(sql_repositories)),
        sms_provider or make_provider(settings.sms_provider),
    )
    subscribe_events(
        runtime.broker,
        settings,
        [topics.SYNC],
        consumer=handlers.CONSUMER,
        handlers=[
            on(ClinicRegistered, bind(handlers.register_clinic, notify.unit_of_work)),
            on(ClientUpserted, bind(handlers.record_contact, notify.unit_of_work)),
        ],
    )
    document_publisher(runtime.broker, topics.NOTIFY, [SmsOptedOut, SmsOptedIn, SmsReceived])
    services.count_from_zero()
    return notify
