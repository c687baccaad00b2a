"""Reminder links come from identity (`POST /internal/v1/reminder-links`): it signs nothing notify
could forge, and keeps what a spent link pre-fills."""

from __future__ import annotations

import httpx

from petportal_runtime.logging import get_logger

log = get_logger(__name__)


class IdentityLinks:
    def __init__(self, identity_url: str, headers: dict[str, str], *, timeout: float = 3) -> None:
        self._http = httpx.AsyncClient(base_url=identity_url, headers=headers, timeout=timeout)

    async def link(self, clinic_id: str, client_id: str) -> str | None:
        """A sign-in link for the client, or None when identity cannot give one now."""
        try:
            response = await self._http.post(
                "/internal/v1/reminder-links", json={"clinic_id": clinic_id, "client_id": client_id}
            )
        except httpx.HTTPError as exc:
            log.warning("no reminder link from identity", error=type(exc).__name__)
            return None
        if response.status_code != 201:
            log.warning("no reminder link from identity", status=response.status_code)
            return None
        url = response.json().get("url")
        return url if isinstance(url, str) else None

    async def close(self) -> None:
        await self._http.aclose()
