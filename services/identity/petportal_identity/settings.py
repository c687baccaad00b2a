"""identity's settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from petportal_runtime.settings import ServiceSettings

# Outside production only (the settings refuse it there).
DEV_TOKEN_HASH_KEY = "dev-token-hash-key"  # noqa: S105


class IdentitySettings(ServiceSettings):
    service_name: str = "identity"
    max_request_body_bytes: int = Field(default=16 * 1024, ge=1024)
    # PEM (PKCS#8) Ed25519 private key. Required in production; generated under dev_key_dir otherwise.
    signing_key_file: Path | None = None
    dev_key_dir: Path = Path(".data/keys")
    # During a key rotation: the previous keys (PEM, public or private), still published in the JWKS so
    # the tokens they signed verify until they expire. Signing always uses SIGNING_KEY_FILE.
    previous_signing_key_files: list[Path] = Field(default_factory=list)
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

    # Parents' passwordless sign-in (docs/sign-in.md).
    token_hash_key: SecretStr = Field(
        default=SecretStr(DEV_TOKEN_HASH_KEY),
        description="keys the hashes of sign-in codes, links, refresh tokens and identifiers; required "
        "(32+ random characters) in production; changing it signs everybody out",
    )
    portal_public_url: str = Field(
        default="http://127.0.0.1:8080",
        pattern=r"^https?://[^?#]+$",
        description="the web portal's address: sign-in links point at it",
    )
    notify_url: str = "http://127.0.0.1:8086"
    sign_in_code_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    sign_in_max_attempts: int = Field(default=5, ge=1, le=20)
    erasure_retry_seconds: int = Field(
        default=300,
        ge=5,
        le=86_400,
        description="how long an erasure waits for a service before asking again",
    )
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    parent_sign_in_rate_limit_per_identifier: str = "5 per 15 minutes"
    parent_sign_in_rate_limit_per_ip: str = "20/minute"
    default_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _no_dev_tokens_in_production(self) -> IdentitySettings:
        if self.production and self.dev_token_endpoint_enabled:
            raise ValueError("DEV_TOKEN_ENDPOINT_ENABLED must not be set when ENVIRONMENT=production")
        if self.production and (
            self.token_hash_key.get_secret_value() == DEV_TOKEN_HASH_KEY
            or len(self.token_hash_key.get_secret_value()) < 32
        ):
            raise ValueError("TOKEN_HASH_KEY must be set (32+ random characters) when ENVIRONMENT=production")
        if self.production and not self.portal_public_url.startswith("https://"):
            raise ValueError("PORTAL_PUBLIC_URL must be https:// when ENVIRONMENT=production")
        return self
