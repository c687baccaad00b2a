"""Settings read from the environment. Services subclass ServiceSettings and add their own fields."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]

# The well-known credential of service-to-service calls outside production (see `internal.py`).
DEV_INTERNAL_API_TOKEN = "petportal-dev-internal-token"  # noqa: S105 (public on purpose)

# How much longer than the outbox retention an inbox keeps its records: a row can outlive its
# retention by one purge interval before it is replayed, and the replayed event can then wait in a
# lagging consumer; a day covers both with room to spare.
INBOX_RETENTION_MARGIN_HOURS = 24


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = "petportal"
    environment: Environment = "development"
    database_url: str = Field(
        default="",
        description="postgresql+asyncpg:// URL of this service's own database",
    )
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    identity_url: str = "http://127.0.0.1:8081"
    outbox_retention_hours: float = Field(default=168, ge=0)
    inbox_retention_hours: float | None = Field(
        default=None,
        description="how long applied events are remembered; default and minimum: "
        f"OUTBOX_RETENTION_HOURS + {INBOX_RETENTION_MARGIN_HOURS}",
    )
    dependency_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="bound on each wait for PostgreSQL, MongoDB or Kafka; past it a request answers 503",
    )
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    # The gateway's own limit; each service sets a lower default for what its API takes.
    max_request_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Services that take photos allow image bodies up to this (other bodies keep the limit above).
    max_image_body_bytes: int | None = Field(default=None, ge=1024)
    # Longest a relay batch holds the relay lock; a replica stopped mid-batch loses it after this.
    outbox_relay_lock_timeout_seconds: float = Field(default=30, gt=0)
    otel_exporter_otlp_endpoint: str | None = None
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="serve /metrics on this port only, not on the API's"
    )
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="where rate-limit counters are kept: memory:// (this process only), postgresql "
        "(this service's own database) or a `limits` storage URI such as redis://host:6379/0",
    )
    log_level: str = "INFO"
    internal_api_token: SecretStr = Field(
        default=SecretStr(DEV_INTERNAL_API_TOKEN),
        description="bearer credential of service-to-service calls on /internal/ routes; "
        "production requires a value of its own",
    )

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def inbox_retention(self) -> timedelta:
        """Long enough that an event replayed from any outbox is still known as applied."""
        minimum = self.outbox_retention_hours + INBOX_RETENTION_MARGIN_HOURS
        hours = minimum if self.inbox_retention_hours is None else self.inbox_retention_hours
        return timedelta(hours=hours)

    @model_validator(mode="after")
    def _inbox_outlives_outbox_replays(self) -> ServiceSettings:
        minimum = self.outbox_retention_hours + INBOX_RETENTION_MARGIN_HOURS
        if self.inbox_retention_hours is not None and self.inbox_retention_hours < minimum:
            raise ValueError(
                f"INBOX_RETENTION_HOURS must be at least OUTBOX_RETENTION_HOURS + "
                f"{INBOX_RETENTION_MARGIN_HOURS} ({minimum:g}): a replayed event must still be in the inbox"
            )
        return self

    @model_validator(mode="after")
    def _no_dev_internal_token_in_production(self) -> ServiceSettings:
        if self.production and self.internal_api_token.get_secret_value() == DEV_INTERNAL_API_TOKEN:
            raise ValueError(
                "INTERNAL_API_TOKEN must be set to a secret of its own when ENVIRONMENT=production"
            )
        return self

    @model_validator(mode="after")
    def _database_url_is_async(self) -> ServiceSettings:
        if self.database_url and not self.database_url.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must be a postgresql+asyncpg:// URL")
        return self
