from __future__ import annotations

from pydantic import Field

from petportal_runtime.settings import ServiceSettings


class PetsSettings(ServiceSettings):
    service_name: str = "pets"
    max_request_body_bytes: int = Field(default=16 * 1024, ge=1024)  # its API takes no body
