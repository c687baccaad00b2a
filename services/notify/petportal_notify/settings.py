from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from petportal_runtime.settings import ServiceSettings

from .domain.delivery import RetryPolicy
from .domain.schedule import ReminderPolicy
from .domain.stops import PhoneDigests

# What `make run`'s local sinks answer to (petportal_devkit.sinks): a real SMTP server keeping a dev
# mailbox, and a server speaking Twilio's Messages API. Outside production only.
DEV_SMTP_PORT = 1025
DEV_SMS_API = "http://127.0.0.1:8026"
DEV_TWILIO_ACCOUNT_SID = "AC" + "0" * 32
DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"  # noqa: S105 - the local sink's, outside production
# Outside production only (the settings refuse it there).
DEV_PHONE_HASH_KEY = "dev-phone-hash-key"
PHONE_HASH_KEY_MIN_LENGTH = 32


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: Literal["starttls", "tls", "none"]


class NotifySettings(ServiceSettings):
    service_name: str = "notify"
    # An SMS webhook (a 1600-character body and the provider's other fields) or a preferences update.
    max_request_body_bytes: int = Field(default=16 * 1024, ge=1024)
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        description="the Twilio account's auth token: it signs X-Twilio-Signature on /webhooks/sms/* and "
        "authenticates sends; required in production",
    )
    twilio_account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    twilio_api_base: str | None = Field(
        default=None, pattern=r"^https?://[^/?#]+$", description="default https://api.twilio.com"
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8080",
        pattern=r"^https?://[^/?#]+$",
        description="the portal's public address (scheme and host, no path): the URL Twilio signs, and "
        "the base of the links in messages",
    )
    default_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    phone_hash_key: SecretStr = Field(
        default=SecretStr(DEV_PHONE_HASH_KEY),
        min_length=1,
        description="keys the hashes (HMAC-SHA256) of the numbers kept as opted out after their client "
        f"is erased (sms_stops); required ({PHONE_HASH_KEY_MIN_LENGTH}+ random characters) in production; "
        "changing it forgets those numbers' opt-outs",
    )

    smtp_host: str | None = Field(default=None, description="required in production")
    smtp_port: int | None = Field(default=None, ge=1, le=65535, description="default 587 (1025 locally)")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "tls", "none"] | None = Field(
        default=None, description="default starttls; `none` is refused in production"
    )
    mail_from: str = Field(default="no-reply@petportal.localhost", max_length=254)

    # Deliveries
    notification_batch_seconds: float = Field(
        default=60, ge=0, description="a burst of staff messages within this becomes one notification"
    )
    dispatch_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    dispatch_batch: int = Field(default=200, ge=1, le=5000)
    send_concurrency: int = Field(default=20, ge=1, le=500)
    send_timeout_seconds: float = Field(default=15, gt=0, le=120)
    delivery_max_attempts: int = Field(default=5, ge=1, le=20)
    delivery_first_retry_seconds: float = Field(default=10, gt=0)
    reminder_service_days: tuple[int, ...] = Field(default=(14, 3), min_length=1)
    reminder_appointment_hours: tuple[int, ...] = Field(default=(48, 2), min_length=1)
    reminder_service_send_at: time = time(10, 0)
    reminder_allowed_from: time = time(9, 0)
    reminder_allowed_until: time = time(20, 0)

    @model_validator(mode="after")
    def _production_and_dev_defaults(self) -> NotifySettings:
        if self.production:
            missing = [
                name
                for name, value in (
                    ("TWILIO_AUTH_TOKEN", self.twilio_auth_token),
                    ("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                    ("SMTP_HOST", self.smtp_host),
                    # The development key is public: as good as none.
                    ("PHONE_HASH_KEY", None if self._dev_phone_hash_key else self.phone_hash_key),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"{', '.join(missing)} required when ENVIRONMENT=production")
            if len(self.phone_hash_key.get_secret_value()) < PHONE_HASH_KEY_MIN_LENGTH:
                raise ValueError(
                    f"PHONE_HASH_KEY must be {PHONE_HASH_KEY_MIN_LENGTH}+ random characters when "
                    "ENVIRONMENT=production"
                )
            if not self.public_base_url.startswith("https://"):
                raise ValueError(
                    "PUBLIC_BASE_URL must be the portal's https:// address when ENVIRONMENT=production"
                )
            if self.smtp_security == "none":
                raise ValueError("SMTP_SECURITY=none is refused when ENVIRONMENT=production")
        if self.reminder_allowed_from >= self.reminder_allowed_until:
            raise ValueError("REMINDER_ALLOWED_FROM must be before REMINDER_ALLOWED_UNTIL")
        return self

    @property
    def _dev_phone_hash_key(self) -> bool:
        return self.phone_hash_key.get_secret_value() == DEV_PHONE_HASH_KEY

    def phone_digests(self) -> PhoneDigests:
        """The hashes sms_stops keeps instead of numbers, under PHONE_HASH_KEY."""
        return PhoneDigests(self.phone_hash_key.get_secret_value().encode())

    def smtp(self) -> SmtpServer:
        """The SMTP server to send through: the settings', else (outside production) the local one."""
        if self.production:
            assert self.smtp_host is not None  # checked above
            return SmtpServer(self.smtp_host, self.smtp_port or 587, self.smtp_security or "starttls")
        return SmtpServer(
            self.smtp_host or "127.0.0.1", self.smtp_port or DEV_SMTP_PORT, self.smtp_security or "none"
        )

    def twilio_api(self) -> tuple[str, str]:
        """Twilio's API base and the account SID: the settings', else (outside production) the sink's."""
        default_base = "https://api.twilio.com" if self.production else DEV_SMS_API
        return self.twilio_api_base or default_base, self.twilio_account_sid or DEV_TWILIO_ACCOUNT_SID

    @property
    def twilio_send_token(self) -> str:
        """What sends authenticate with: the account's token (a dev one for the local sink)."""
        if self.twilio_auth_token is not None:
            return self.twilio_auth_token.get_secret_value()
        return DEV_TWILIO_AUTH_TOKEN

    def reminder_policy(self) -> ReminderPolicy:
        return ReminderPolicy(
            service_days=self.reminder_service_days,
            appointment_hours=self.reminder_appointment_hours,
            service_send_at=self.reminder_service_send_at,
            allowed_from=self.reminder_allowed_from,
            allowed_until=self.reminder_allowed_until,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.delivery_max_attempts,
            first_delay=timedelta(seconds=self.delivery_first_retry_seconds),
        )
