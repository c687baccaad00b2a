"""Settings read from the environment. Services subclass ServiceSettings and add their own fields."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


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
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
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

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @model_validator(mode="after")
    def _database_url_is_async(self) -> ServiceSettings:
        if self.database_url and not self.database_url.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must be a postgresql+asyncpg:// URL")
        return self
