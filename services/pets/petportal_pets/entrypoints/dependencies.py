"""What routes take from the container the app was created with.

Coroutines, though they await nothing: FastAPI runs a plain function dependency in its thread pool,
a hand-off to a worker thread and back on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from petportal_runtime.container import container_of

from ..service_layer.unit_of_work import PetsUnitOfWork


async def _unit_of_work(request: Request) -> PetsUnitOfWork:
    unit_of_work: PetsUnitOfWork = container_of(request).unit_of_work()
    return unit_of_work


UnitOfWork = Annotated[PetsUnitOfWork, Depends(_unit_of_work)]
