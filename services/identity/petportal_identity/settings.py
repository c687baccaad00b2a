"""identity's settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from petportal_runtime.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: str = "identity"
    max_request_body_bytes: int = Field(default=16 * 1024, ge=1024)
    # PEM (PKCS#8) Ed25519 private key. Required in production; generated under dev_key_dir otherwise.
    signing_key_file: Path | None = None
    dev_key_dir: Path = Path(".data/keys")
    # Issues parent tokens for any known client without a sign-in: development and demos only.
    dev_token_endpoint_enabled: bool = False
    parent_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    staff_token_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=86_400)
    # Per email, the lockout: five failed sign-ins lock the email until the minute that began with the
    # first of them is over. A successful sign-in clears the count.
    login_rate_limit_per_email: str = "5/minute"
    login_rate_limit_per_ip: str = "20/minute"
    # The sign-in counters in identity's own database: shared by every replica, cleared by the CLI.
    rate_limit_storage_url: str = "postgresql"

    @model_validator(mode="after")
    def _no_dev_tokens_in_production(self) -> IdentitySettings:
        if self.production and self.dev_token_endpoint_enabled:
            raise ValueError("DEV_TOKEN_ENDPOINT_ENABLED must not be set when ENVIRONMENT=production")
        return self
