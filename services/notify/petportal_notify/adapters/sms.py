"""SMS provider adapters. Development uses the logging fake: nothing leaves the machine."""

from __future__ import annotations

from petportal_runtime.logging import get_logger

from ..domain.sms import SmsProvider

log = get_logger(__name__)


class LoggingSmsProvider:
    """Records that a text would be sent, without the numbers or the body (personal data)."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, *, from_number: str, to_number: str, body: str) -> None:
        self.sent += 1
        log.info("sms sent (logging provider)", length=len(body))


def make_provider(name: str) -> SmsProvider:
    if name == "logging":
        return LoggingSmsProvider()
    raise ValueError(f"unknown SMS provider {name}")
