"""The home screen: the parent's to-do list and pets, fetched concurrently, plus ways to get help."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from petportal_runtime.logging import get_logger

from ..adapters.upstreams import (
    UpstreamError,
    UpstreamResponse,
    Upstreams,
    UpstreamTimeout,
    UpstreamUnavailable,
)

log = get_logger(__name__)

GET_HELP: list[dict[str, str]] = [
    {"kind": "talk_to_staff", "href": "/conversation"},
    {"kind": "book_appointment", "href": "/appointments/request"},
]


def _json(service: str, response: UpstreamResponse) -> Any:
    if response.status_code != 200:
        log.warning("upstream answered with an error", upstream=service, status=response.status_code)
        raise UpstreamUnavailable(service)
    try:
        return json.loads(response.content)
    except ValueError as exc:
        log.warning("upstream answered with invalid JSON", upstream=service)
        raise UpstreamUnavailable(service) from exc


def _todo(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        log.warning("upstream answered an unexpected shape", upstream="todo")
        raise UpstreamUnavailable("todo")
    return body


def _pets(body: Any) -> list[dict[str, Any]]:
    # pets answers a list, or an object wrapping it; the home screen wants the list.
    if isinstance(body, dict):
        body = body.get("pets", body.get("items"))
    if not isinstance(body, list) or not all(isinstance(pet, dict) for pet in body):
        raise ValueError("pets answered neither a list of objects nor {pets: [...]}")
    return body


async def _part(
    upstreams: Upstreams, service: str, path: bytes, headers: dict[str, str], seconds: float
) -> UpstreamResponse:
    """One upstream call of a composed answer, with all its time (connecting, retry, body) bounded."""
    try:
        async with asyncio.timeout(seconds):
            return await upstreams.forward(service, "GET", path, headers)
    except TimeoutError as exc:
        raise UpstreamTimeout(service) from exc


async def compose_home(
    upstreams: Upstreams, headers: dict[str, str], seconds_per_part: float
) -> dict[str, Any]:
    """`headers` carry the parent's Authorization; each part gets at most `seconds_per_part`. Raises
    UpstreamUnavailable when todo cannot answer; a failing or slow pets service only leaves `pets`
    as null (the screen still renders)."""
    todo, pets = await asyncio.gather(
        _part(upstreams, "todo", b"/api/v1/todo", headers, seconds_per_part),
        _part(upstreams, "pets", b"/api/v1/pets", headers, seconds_per_part),
        return_exceptions=True,
    )
    if isinstance(todo, BaseException):
        # Without its to-do list the home screen is not worth showing: 503, whatever the cause.
        raise UpstreamUnavailable("todo") from todo
    pet_list: list[dict[str, Any]] | None = None
    if isinstance(pets, BaseException):
        log.warning("home rendered without pets", upstream="pets", error=type(pets).__name__)
    else:
        try:
            pet_list = _pets(_json("pets", pets))
        except (UpstreamError, ValueError) as exc:
            log.warning("home rendered without pets", upstream="pets", error=type(exc).__name__)
    return {
        "todo": _todo(_json("todo", todo)),
        "pets": pet_list,
        # TODO(appointments issue): fill from the appointments service once it exists.
        "upcoming_appointments": [],
        # TODO(live chat issue): add a "live_chat" option when live chat ships.
        "get_help": GET_HELP,
    }
