"""Service-to-service calls: routes under /internal/ that only other Pet Portal services may call.

The gateway never forwards /internal/ (its route table has no such prefix) and the chart's
NetworkPolicies keep services unreachable from outside; on top of that every internal route requires
`Authorization: Bearer <INTERNAL_API_TOKEN>`, one secret shared by the services (a dev default
outside production). Callers send it with `internal_headers(settings)`.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .settings import ServiceSettings

PREFIX = "/internal"

_bearer = HTTPBearer(auto_error=False, scheme_name="InternalApiToken")


def internal_headers(settings: ServiceSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.internal_api_token.get_secret_value()}"}


async def require_internal_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """A FastAPI dependency: 401 unless the caller presents the services' shared credential."""
    settings: ServiceSettings = request.app.state.runtime.settings
    expected = settings.internal_api_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an internal route: service credential required",
            headers={"WWW-Authenticate": "Bearer"},
        )


InternalCaller = Annotated[None, Depends(require_internal_caller)]
