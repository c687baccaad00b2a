"""/healthz (the process is up) and /readyz (its dependencies answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[object]]


def health_router(checks: dict[str, Check], timeout: float = 2.0) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        async def run(check: Check) -> str:
            try:
                await asyncio.wait_for(check(), timeout)
                return "ok"
            except Exception as exc:  # readiness reports, never raises
                return f"failing: {type(exc).__name__}"

        results = dict(zip(checks, await asyncio.gather(*(run(c) for c in checks.values())), strict=True))
        ready = all(r == "ok" for r in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results},
            status_code=200 if ready else 503,
        )

    return router
