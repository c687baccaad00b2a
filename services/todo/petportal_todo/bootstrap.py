"""Wiring: the runtime (no PostgreSQL: the read model is in MongoDB), the read model, the consumer and
the erasure confirmations it publishes (straight to Kafka: no outbox)."""

from __future__ import annotations

from dataclasses import dataclass

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import (
    bind,
    consumer_group,
    document_publisher,
    subscribe_batches_written_behind,
)
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import ClientDataErased, topics

from .adapters.mongo import MONGODB, MongoReadModel, make_client
from .adapters.publisher import KafkaPublisher
from .adapters.replay import TopicReplayer
from .domain import CONSUMED_EVENTS
from .entrypoints import handlers
from .service_layer.projection import Publish
from .settings import TodoSettings

CONSUMER = "todo"


def group_id(consumer: str = CONSUMER) -> str:
    # `rebuild` commits offsets for the group the runtime's subscriber joins.
    return consumer_group(consumer)


# identity's: the erasure requests; pets': the clinic's answers to the parents' requests.
SOURCE_TOPICS = (topics.MESSAGING, topics.NOTIFY, topics.SYNC, topics.IDENTITY, topics.PETS)


@dataclass
class TodoService:
    settings: TodoSettings
    runtime: ServiceRuntime
    read_model: MongoReadModel


def make_read_model(settings: TodoSettings) -> MongoReadModel:
    client = make_client(settings.mongodb_url, timeout=settings.dependency_timeout_seconds)
    return MongoReadModel(client, settings.mongodb_database)


def bootstrap(
    settings: TodoSettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    read_model: MongoReadModel | None = None,
    consumer: str = CONSUMER,
    publish: Publish | None = None,
) -> TodoService:
    """`consumer` names the consumer group (tests give each app its own); `publish` sends the
    erasure confirmations (by default on the runtime's broker, acknowledged)."""
    settings = settings or TodoSettings()
    runtime = ServiceRuntime(settings, database=False)
    if token_verifier is not None:
        runtime.token_verifier = token_verifier
    read_model = read_model or make_read_model(settings)
    runtime.checks["mongodb"] = read_model.ping
    runtime.dependencies.append(MONGODB)
    projection = handlers.Projection(read_model, publish or KafkaPublisher(runtime.broker))
    subscribe_batches_written_behind(
        runtime.broker,
        settings,
        SOURCE_TOPICS,
        consumer=consumer,
        event_types=CONSUMED_EVENTS,
        handler=bind(handlers.project_events, projection),
        max_records=settings.todo_batch_max_records,
        fetch_max_wait_ms=settings.todo_fetch_max_wait_ms,
    )
    document_publisher(runtime.broker, topics.ERASURE, [ClientDataErased])
    return TodoService(settings, runtime, read_model)


def make_replayer(settings: TodoSettings, consumer: str = CONSUMER) -> TopicReplayer:
    return TopicReplayer(
        settings.kafka_bootstrap_servers,
        SOURCE_TOPICS,
        {cls.EVENT_TYPE for cls in CONSUMED_EVENTS},
        group_id=group_id(consumer),
        max_records=settings.todo_batch_max_records,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
