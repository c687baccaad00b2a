"""Wiring: the runtime, the consumers and what is published. Tests pass their own pieces."""

from __future__ import annotations

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, document_publisher, on, subscribe_events
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientUpserted, MessageRead, MessageReceived, topics

from .entrypoints import handlers
from .settings import MessagingSettings


def bootstrap(
    settings: MessagingSettings | None = None, *, token_verifier: TokenVerifier | None = None
) -> ServiceRuntime:
    settings = settings or MessagingSettings()
    runtime = ServiceRuntime(settings)
    if token_verifier is not None:
        runtime.token_verifier = token_verifier
    subscribe_events(
        runtime.broker,
        settings,
        [topics.SYNC],
        consumer=handlers.CONSUMER,
        handlers=[on(ClientUpserted, bind(handlers.record_client, runtime))],
    )
    document_publisher(runtime.broker, topics.MESSAGING, [MessageReceived, MessageRead])
    return runtime
