"""A dependency down or too slow answers 503 with Retry-After, not a slow 500.

Each driver bounds its waits (see db.make_engine and DEPENDENCY_TIMEOUT_SECONDS) and fails with its
own errors; the exception handlers installed by `install_unavailable_handlers` turn those into one
response, so routes need no try/except of their own. The dependencies are defined beside their
drivers (db.DATABASE, broker.BROKER, todo's MongoDB), so a service imports only the drivers it uses.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .logging import get_logger

log = get_logger(__name__)

RETRY_AFTER_SECONDS = 5


def _never(_exc: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class Dependency:
    """A backing service: the errors that mean it is unavailable (by type, or by `also`), and the
    modules of its driver (a plain OSError or TimeoutError raised inside them is its too)."""

    name: str
    errors: tuple[type[BaseException], ...]
    modules: tuple[str, ...]
    also: Callable[[BaseException], bool] = _never
    # Base classes of the driver's errors that `also` may recognise (a handler is registered for them).
    families: tuple[type[Exception], ...] = ()

    def owns(self, exc: BaseException) -> bool:
        return isinstance(exc, self.errors) or self.also(exc)

    def raised_in(self, exc: BaseException) -> bool:
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            module = str(frame.f_globals.get("__name__", ""))
            if module.split(".", 1)[0] in self.modules:
                return True
        return False


def unavailable_dependency(exc: BaseException, dependencies: Sequence[Dependency]) -> str | None:
    """The name of the dependency `exc` says is unavailable, or None if it says something else."""
    for dependency in dependencies:
        if dependency.owns(exc):
            return dependency.name
    if isinstance(exc, OSError):  # refused, reset, unreachable; TimeoutError is one too
        for dependency in dependencies:
            if dependency.raised_in(exc):
                return dependency.name
        return "a dependency"
    return None


def unavailable_response(dependency: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{dependency} temporarily unavailable"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_unavailable_handlers(app: FastAPI, dependencies: Iterable[Dependency]) -> None:
    """Exception handlers answering 503 for the dependencies' errors; any other error of the same
    families (a unique violation, a bad query) is re-raised and stays a 500."""
    known = tuple(dependencies)

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        dependency = unavailable_dependency(exc, known)
        if dependency is None:
            raise exc
        route = getattr(request.scope.get("route"), "path", "unmatched")
        log.warning("dependency unavailable", dependency=dependency, error=type(exc).__name__, route=route)
        return unavailable_response(dependency)

    families: set[type[Exception]] = {OSError}
    for dependency in known:
        families |= set(dependency.families)
        families |= {e for e in dependency.errors if issubclass(e, Exception)}
    for family in families:
        app.add_exception_handler(family, handle)
