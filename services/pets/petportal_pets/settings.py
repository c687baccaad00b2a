from __future__ import annotations

from petportal_runtime.settings import ServiceSettings


class PetsSettings(ServiceSettings):
    service_name: str = "pets"
