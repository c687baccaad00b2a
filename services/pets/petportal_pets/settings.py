from __future__ import annotations

from pydantic import Field

from petportal_runtime.photos import MAX_PHOTO_BYTES
from petportal_runtime.settings import ServiceSettings


class PetsSettings(ServiceSettings):
    service_name: str = "pets"
    # Its only bodies are pet photos (domain.photos.MAX_PHOTO_BYTES), with room for the request around one.
    max_request_body_bytes: int = Field(default=MAX_PHOTO_BYTES + 64 * 1024, ge=1024)
