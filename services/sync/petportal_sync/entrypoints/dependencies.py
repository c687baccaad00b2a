"""What sync's routes take from the container the app was created with, and the connector's clinic."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from petportal_runtime.container import container_of

from ..bootstrap import Sync
from ..domain.clinics import Clinic
from ..service_layer import services
from ..service_layer.unit_of_work import SyncUnitOfWork


def _sync(request: Request) -> Sync:
    sync: Sync = container_of(request)
    return sync


def _unit_of_work(request: Request) -> SyncUnitOfWork:
    return _sync(request).unit_of_work()


SyncDep = Annotated[Sync, Depends(_sync)]
UnitOfWork = Annotated[SyncUnitOfWork, Depends(_unit_of_work)]
_bearer = HTTPBearer(auto_error=False)


async def current_clinic(
    uow: UnitOfWork, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Clinic:
    """The clinic whose API key the request carries (`InvalidApiKey`, answered 401, otherwise)."""
    return await services.authenticate_clinic(uow, credentials.credentials if credentials else None)


CurrentClinic = Annotated[Clinic, Depends(current_clinic)]
