from __future__ import annotations

from pydantic import Field

from petportal_runtime.photos import MAX_PHOTO_BYTES
from petportal_runtime.settings import ServiceSettings


class MessagingSettings(ServiceSettings):
    service_name: str = "messaging"
    # A photo sent in a message is at most MAX_PHOTO_BYTES (a text message is far smaller).
    max_request_body_bytes: int = Field(default=MAX_PHOTO_BYTES + 64 * 1024, ge=1024)
    # Feedback about the portal: a few a day per parent, counted in messaging's own database (every
    # replica shares the counts).
    feedback_rate_limit: str = "5/day"
    rate_limit_storage_url: str = "postgresql"
