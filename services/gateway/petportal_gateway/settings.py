"""Gateway settings: where the upstream services are, timeouts and the per-client rate limit."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from petportal_runtime.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    # identity_url comes from ServiceSettings.
    pets_url: str = "http://127.0.0.1:8082"
    messaging_url: str = "http://127.0.0.1:8083"
    todo_url: str = "http://127.0.0.1:8084"
    sync_url: str = "http://127.0.0.1:8085"
    notify_url: str = "http://127.0.0.1:8086"
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    upstream_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="all the time one part of a composed answer may take"
    )
    connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    upstream_max_connections: int = Field(default=200, ge=1, le=10_000)
    rate_limit_per_minute: int = Field(default=300, ge=1, description="requests per client IP per minute")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    web_dir: Path | None = Field(
        default=None, description="the built web portal (web/dist): served on the same origin as the API"
    )
    cors_allowed_origins: list[str] = Field(
        default_factory=list,
        description="web origins allowed to call the API from a browser (JSON list), e.g. "
        '["https://portal.example-vets.com"]; empty: same origin only (the portal the gateway serves)',
    )
    # The gateway's port is public: its metrics are only ever served on this one.
    metrics_port: int = Field(default=9080, ge=1, le=65535)

    @field_validator("identity_url", "pets_url", "messaging_url", "todo_url", "sync_url", "notify_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            scheme, _, rest = origin.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest or "*" in origin:
                raise ValueError(f"not an origin (scheme://host[:port], no wildcard): {origin!r}")
        return value

    def upstream_urls(self) -> dict[str, str]:
        return {
            "identity": self.identity_url,
            "pets": self.pets_url,
            "messaging": self.messaging_url,
            "todo": self.todo_url,
            "sync": self.sync_url,
            "notify": self.notify_url,
        }
