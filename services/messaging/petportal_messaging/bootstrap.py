"""Wiring: the runtime, the unit of work on messaging's repositories, the consumers and what is
published. Tests pass their own pieces (a token verifier, a fake unit of work)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, document_publisher, on, subscribe_events
from petportal_runtime.container import Container
from petportal_runtime.ratelimit import RateLimiter, rate_limit_storage
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    ClientMessageSent,
    ClientUpserted,
    MessageRead,
    MessageReceived,
    SmsReceived,
    topics,
)

from .adapters.repository import sql_repositories
from .entrypoints import handlers
from .service_layer.unit_of_work import MessagingRepositories, MessagingUnitOfWork
from .settings import MessagingSettings


@dataclass
class Messaging(Container[MessagingSettings, MessagingRepositories]):
    feedback_limiter: RateLimiter


def bootstrap(
    settings: MessagingSettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    unit_of_work: Callable[[], MessagingUnitOfWork] | None = None,
) -> Messaging:
    settings = settings or MessagingSettings()
    runtime = ServiceRuntime(settings, token_verifier=token_verifier)
    messaging = Messaging(
        settings,
        runtime,
        unit_of_work or (lambda: runtime.unit_of_work(sql_repositories)),
        feedback_limiter=RateLimiter(
            rate_limit_storage(runtime), settings.feedback_rate_limit, namespace="feedback"
        ),
    )
    subscribe_events(
        runtime.broker,
        settings,
        [topics.SYNC, topics.NOTIFY, topics.IDENTITY],
        consumer=handlers.CONSUMER,
        handlers=[
            on(ClientUpserted, bind(handlers.record_client, messaging.unit_of_work)),
            on(SmsReceived, bind(handlers.receive_client_text, messaging.unit_of_work)),
            on(ClientErasureRequested, bind(handlers.erase_client, messaging.unit_of_work)),
        ],
    )
    document_publisher(runtime.broker, topics.MESSAGING, [MessageReceived, MessageRead, ClientMessageSent])
    document_publisher(runtime.broker, topics.ERASURE, [ClientDataErased])
    return messaging
