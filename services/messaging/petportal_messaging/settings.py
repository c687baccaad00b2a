from __future__ import annotations

from pydantic import Field

from petportal_runtime.photos import MAX_PHOTO_BYTES
from petportal_runtime.settings import ServiceSettings


class MessagingSettings(ServiceSettings):
    service_name: str = "messaging"
    # A 5000-character message, every character written as a JSON escape pair, fits; a photo sent in
    # a message (an image body) may be MAX_PHOTO_BYTES.
    max_request_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_image_body_bytes: int | None = Field(default=MAX_PHOTO_BYTES + 64 * 1024, ge=1024)
    # Feedback about the portal: a few a day per parent, counted in messaging's own database (every
    # replica shares the counts).
    feedback_rate_limit: str = "5/day"
    rate_limit_storage_url: str = "postgresql"
