"""Reminder links come from identity (`POST /internal/v1/reminder-links`): it signs nothing notify
could forge, and keeps what a spent link pre-fills."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from petportal_runtime.logging import get_logger

log = get_logger(__name__)


class IdentityLinks:
    def __init__(self, identity_url: str, headers: dict[str, str], *, timeout: float = 3) -> None:
        self._http = httpx.AsyncClient(base_url=identity_url, headers=headers, timeout=timeout)

    async def links(self, clients: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """A sign-in link for each client identity knows; none at all when it cannot answer now."""
        body = {"clients": [{"clinic_id": clinic, "client_id": client} for clinic, client in clients]}
        try:
            response = await self._http.post("/internal/v1/reminder-links", json=body)
        except httpx.HTTPError as exc:
            log.warning("no reminder links from identity", error=type(exc).__name__)
            return {}
        if response.status_code != 200:
            log.warning("no reminder links from identity", status=response.status_code)
            return {}
        return {
            (link["clinic_id"], link["client_id"]): link["url"]
            for link in response.json().get("links", [])
            if isinstance(link.get("url"), str)
        }

    async def close(self) -> None:
        await self._http.aclose()
