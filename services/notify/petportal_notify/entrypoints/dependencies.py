"""What routes take from the container the app was created with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from petportal_runtime.container import container_of

from ..bootstrap import Notify
from ..service_layer.unit_of_work import NotifyUnitOfWork


def _container(request: Request) -> Notify:
    notify: Notify = container_of(request)
    return notify


def _unit_of_work(request: Request) -> NotifyUnitOfWork:
    return _container(request).unit_of_work()


NotifyContainer = Annotated[Notify, Depends(_container)]
UnitOfWork = Annotated[NotifyUnitOfWork, Depends(_unit_of_work)]
