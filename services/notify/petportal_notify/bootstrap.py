"""Wiring: the runtime, the consumers, the SMS provider and what is published."""

from __future__ import annotations

from dataclasses import dataclass

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, document_publisher, on, subscribe_events
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, ClinicRegistered, SmsOptedIn, SmsOptedOut, topics

from .adapters.sms import make_provider
from .domain.sms import SmsProvider
from .entrypoints import handlers
from .settings import NotifySettings


@dataclass
class Notify:
    settings: NotifySettings
    runtime: ServiceRuntime
    sms_provider: SmsProvider


def bootstrap(
    settings: NotifySettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    sms_provider: SmsProvider | None = None,
) -> Notify:
    settings = settings or NotifySettings()
    runtime = ServiceRuntime(settings, token_verifier=token_verifier)
    subscribe_events(
        runtime.broker,
        settings,
        [topics.SYNC],
        consumer=handlers.CONSUMER,
        handlers=[
            on(ClinicRegistered, bind(handlers.register_clinic, runtime)),
            on(ClientUpserted, bind(handlers.record_contact, runtime)),
        ],
    )
    document_publisher(runtime.broker, topics.NOTIFY, [SmsOptedOut, SmsOptedIn])
    return Notify(settings, runtime, sms_provider or make_provider(settings.sms_provider))
