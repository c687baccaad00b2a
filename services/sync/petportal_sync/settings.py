"""sync's settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from petportal_runtime.settings import ServiceSettings

MAX_RECORDS = 5000


class SyncSettings(ServiceSettings):
    service_name: str = "sync"
    # A full batch of long records fits; the gateway forwards up to 10 MiB.
    max_request_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Region used to read phone numbers written without a country code.
    default_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    # How long a parent holds a slot they picked before it is free again for others.
    booking_hold_seconds: int = Field(default=300, ge=30, le=3600)

    @property
    def booking_hold_timedelta(self) -> timedelta:
        return timedelta(seconds=self.booking_hold_seconds)
