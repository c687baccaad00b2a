"""The home screen: the parent's to-do list and pets, fetched concurrently, plus ways to get help."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from petportal_runtime.logging import get_logger

from ..adapters.upstreams import (
    UpstreamError,
    UpstreamResponse,
    Upstreams,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from ..domain.home import GET_HELP, HomeScreen, Pet, PetList, TodoList

log = get_logger(__name__)


def _todo(response: UpstreamResponse) -> TodoList:
    if response.status_code != 200:
        log.warning("upstream answered with an error", upstream="todo", status=response.status_code)
        raise UpstreamUnavailable("todo")
    try:
        return TodoList.model_validate_json(response.content)
    except ValidationError as exc:
        log.warning("upstream answered an unexpected shape", upstream="todo")
        raise UpstreamUnavailable("todo") from exc


def _pets(response: UpstreamResponse) -> list[Pet]:
    if response.status_code != 200:
        log.warning("upstream answered with an error", upstream="pets", status=response.status_code)
        raise UpstreamUnavailable("pets")
    return PetList.model_validate_json(response.content).pets


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
    """`headers` carry the parent's Authorization; each part gets at most `seconds_per_part`. Raises
    UpstreamUnavailable when todo cannot answer (or answers something that is not a to-do list); a
    failing or slow pets service only leaves `pets` as null (the screen still renders)."""
    todo, pets = await asyncio.gather(
        _part(upstreams, "todo", b"/api/v1/todo", headers, seconds_per_part),
        _part(upstreams, "pets", b"/api/v1/pets", headers, seconds_per_part),
        return_exceptions=True,
    )
    if isinstance(todo, BaseException):
        # Without its to-do list the home screen is not worth showing: 503, whatever the cause.
        raise UpstreamUnavailable("todo") from todo
    pet_list: list[Pet] | None = None
    if isinstance(pets, BaseException):
        log.warning("home rendered without pets", upstream="pets", error=type(pets).__name__)
    else:
        try:
            pet_list = _pets(pets)
        except (UpstreamError, ValidationError) as exc:
            log.warning("home rendered without pets", upstream="pets", error=type(exc).__name__)
    return HomeScreen(
        todo=_todo(todo),
        pets=pet_list,
        # TODO(appointments issue): fill from the appointments service once it exists.
        upcoming_appointments=[],
        # TODO(live chat issue): add a "live_chat" option when live chat ships.
        get_help=list(GET_HELP),
    )
