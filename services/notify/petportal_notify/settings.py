from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from petportal_runtime.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    service_name: str = "notify"
    # An SMS webhook (a 1600-character body and the provider's other fields) or a preferences update.
    max_request_body_bytes: int = Field(default=16 * 1024, ge=1024)
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        description="the Twilio account's auth token: it signs X-Twilio-Signature on /webhooks/sms/*; "
        "required in production",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8080",
        pattern=r"^https?://[^/?#]+$",
        description="the portal's public address (scheme and host, no path): the URL Twilio signs",
    )
    sms_provider: Literal["logging"] = "logging"
    default_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _secret_in_production(self) -> NotifySettings:
        if self.production and self.twilio_auth_token is None:
            raise ValueError("TWILIO_AUTH_TOKEN is required when ENVIRONMENT=production")
        if self.production and not self.public_base_url.startswith("https://"):
            raise ValueError(
                "PUBLIC_BASE_URL must be the portal's https:// address when ENVIRONMENT=production"
            )
        return self
