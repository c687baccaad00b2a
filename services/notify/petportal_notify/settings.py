from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from petportal_runtime.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    service_name: str = "notify"
    # An SMS webhook (a 1600-character body and the provider's other fields) or a preferences update.
    max_request_body_bytes: int = Field(default=16 * 1024, ge=1024)
    sms_webhook_secret: str | None = Field(
        default=None,
        description="HMAC-SHA256 key of X-PetPortal-Signature on /webhooks/sms/*; required in production",
    )
    sms_provider: Literal["logging"] = "logging"
    default_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _secret_in_production(self) -> NotifySettings:
        if self.production and not self.sms_webhook_secret:
            raise ValueError("SMS_WEBHOOK_SECRET is required when ENVIRONMENT=production")
        return self
