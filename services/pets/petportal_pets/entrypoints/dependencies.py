"""What routes take from the container the app was created with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from petportal_runtime.container import container_of

from ..service_layer.unit_of_work import PetsUnitOfWork


def _unit_of_work(request: Request) -> PetsUnitOfWork:
    unit_of_work: PetsUnitOfWork = container_of(request).unit_of_work()
    return unit_of_work


UnitOfWork = Annotated[PetsUnitOfWork, Depends(_unit_of_work)]
