"""What every database service's `bootstrap()` returns: its settings, its runtime and a factory of
units of work on its repositories. A service adds its own adapters as fields of a subclass
(identity: the token issuer and the sign-in limits; notify: the SMS sender)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request

from .service import ServiceRuntime
from .settings import ServiceSettings
from .uow import UnitOfWork

S = TypeVar("S", bound=ServiceSettings)
R = TypeVar("R")


@dataclass
class Container(Generic[S, R]):
    settings: S
    runtime: ServiceRuntime
    unit_of_work: Callable[[], UnitOfWork[R]]


def container_of(request: Request) -> Any:
    """The container the app was created with (each service's `create_app` stores it)."""
    return request.app.state.container
