from __future__ import annotations

from petportal_runtime.settings import ServiceSettings


class MessagingSettings(ServiceSettings):
    service_name: str = "messaging"
