from __future__ import annotations

from pydantic import Field

from petportal_runtime.settings import ServiceSettings


class MessagingSettings(ServiceSettings):
    service_name: str = "messaging"
    # A 5000-character message, every character written as a JSON escape pair, fits.
    max_request_body_bytes: int = Field(default=64 * 1024, ge=1024)
