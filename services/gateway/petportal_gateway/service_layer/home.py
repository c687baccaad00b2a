"""The home screen: the parent's to-do list and their pets with their upcoming appointments, fetched
concurrently (one call to todo, one to pets), plus ways to get help."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from petportal_runtime.logging import get_logger

from ..adapters.upstreams import (
    UpstreamError,
    UpstreamResponse,
    Upstreams,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from ..domain.home import HomeScreen, PetsOverview, TodoAnswer, TodoList, get_help

log = get_logger(__name__)

T = TypeVar("T")


def _todo(response: UpstreamResponse) -> TodoAnswer:
    if response.status_code != 200:
        log.warning("upstream answered with an error", upstream="todo", status=response.status_code)
        raise UpstreamUnavailable("todo")
    try:
        return TodoAnswer.model_validate_json(response.content)
    except ValidationError as exc:
        log.warning("upstream answered an unexpected shape", upstream="todo")
        raise UpstreamUnavailable("todo") from exc


def _pets(response: UpstreamResponse) -> PetsOverview:
    if response.status_code != 200:
        log.warning("upstream answered with an error", upstream="pets", status=response.status_code)
        raise UpstreamUnavailable("pets")
    overview = PetsOverview.model_validate_json(response.content)
    overview.appointments.sort(key=lambda a: a.starts_at)
    return overview


def _optional(
    part: UpstreamResponse | BaseException, read: Callable[[UpstreamResponse], T], what: str
) -> T | None:
    """A part the screen can do without: None when its call failed or answered off contract."""
    if isinstance(part, BaseException):
        log.warning("home rendered without a part", part=what, error=type(part).__name__)
        return None
    try:
        return read(part)
    except (UpstreamError, ValidationError) as exc:
        log.warning("home rendered without a part", part=what, error=type(exc).__name__)
        return None


async def _part(
    upstreams: Upstreams, service: str, path: bytes, headers: dict[str, str], seconds: float
) -> UpstreamResponse:
    """One upstream call of a composed answer, with all its time (connecting, retry, body) bounded."""
    try:
        async with asyncio.timeout(seconds):
            return await upstreams.forward(service, "GET", path, headers)
    except TimeoutError as exc:
        raise UpstreamTimeout(service) from exc


async def compose_home(upstreams: Upstreams, headers: dict[str, str], seconds_per_part: float) -> HomeScreen:
    """`headers` carry the parent's Authorization; the two calls (todo's list; pets' overview: the
    pets and the upcoming appointments in one answer) run at once, each given at most
    `seconds_per_part`. Raises UpstreamUnavailable when todo cannot answer (or answers something that
    is not a to-do list); a failing or slow pets service only leaves `pets` and
    `upcoming_appointments` null (the screen still renders)."""
    todo, pets = await asyncio.gather(
        _part(upstreams, "todo", b"/api/v1/todo", headers, seconds_per_part),
        _part(upstreams, "pets", b"/api/v1/pets-overview", headers, seconds_per_part),
        return_exceptions=True,
    )
    if isinstance(todo, BaseException):
        # Without its to-do list the home screen is not worth showing: 503, whatever the cause.
        raise UpstreamUnavailable("todo") from todo
    answer = _todo(todo)
    overview = _optional(pets, _pets, "pets")
    return HomeScreen(
        todo=TodoList(badge=answer.badge, items=answer.items),
        pets=overview.pets if overview is not None else None,
        upcoming_appointments=overview.appointments if overview is not None else None,
        get_help=get_help(answer.help),
    )
