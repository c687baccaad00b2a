"""Sign-in codes go out through notify's delivery API (`POST /internal/v1/deliveries`), which checks
consent and sends by email or SMS. Called in the background, so the sign-in answer takes as long
whether or not a code is sent; retried a few times on notify's 5xx and connection errors."""

from __future__ import annotations

import asyncio

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from petportal_runtime.auth import ClientRef
from petportal_runtime.logging import get_logger

log = get_logger(__name__)


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


class NotifyCodes:
    def __init__(self, notify_url: str, headers: dict[str, str], *, timeout: float = 5) -> None:
        self._http = httpx.AsyncClient(base_url=notify_url, headers=headers, timeout=timeout)
        self._pending: set[asyncio.Task[None]] = set()

    async def send(
        self, key: str, client: ClientRef, channel: str, code: str, link: str, minutes: int
    ) -> None:
        self._start(key, client, channel, "sign_in_code", {"code": code, "link": link, "minutes": minutes})

    async def send_erasure_code(
        self, key: str, client: ClientRef, channel: str, code: str, minutes: int
    ) -> None:
        self._start(key, client, channel, "erasure_code", {"code": code, "minutes": minutes})

    def _start(
        self, key: str, client: ClientRef, channel: str, template: str, params: dict[str, object]
    ) -> None:
        body: dict[str, object] = {
            "key": key,
            "clinic_id": client.clinic_id,
            "client_id": client.client_id,
            "channel": channel,
            "template": template,
            "params": params,
        }
        task = asyncio.create_task(self._deliver(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, body: dict[str, object]) -> None:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_worth_retrying),
                stop=stop_after_attempt(4),
                wait=wait_exponential(multiplier=0.5, max=5),
                reraise=True,
            ):
                with attempt:
                    response = await self._http.post("/internal/v1/deliveries", json=body)
                    response.raise_for_status()
        except httpx.HTTPError as exc:
            status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
            log.warning(
                "code not handed to notify",
                template=body["template"],
                error=type(exc).__name__,
                status=status,
            )

    async def drain(self) -> None:
        """Wait for the codes being handed over (tests; shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self._http.aclose()
