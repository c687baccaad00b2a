"""`ParentRoute`: a parent's route answered without FastAPI's per-request dependency machinery.

FastAPI resolves every dependency of a route on every request: on a small endpoint, a good part of
its framework time. The home screen's routes (the gateway's `GET /api/v1/home`, pets' overview) are
asked for on every visit and need only what every parent's route checks: the app-wide input checks
(`edge.check_request`, the one app-wide dependency of `ServiceRuntime.create_app`'s apps) and the
parent's bearer token (`auth.CurrentParent`). A `ParentRoute` makes those two checks itself, in
FastAPI's order and with the same answers (422, 401, 403), then calls the endpoint. Its OpenAPI
operation is the one FastAPI makes of the endpoint (the bearer scheme, the response model). The
endpoint returns a `Response`: nothing validates a returned model again.

    router = APIRouter(route_class=ParentRoute)

    @router.get("/api/v1/home", response_model=HomeScreen)
    async def home(request: Request, parent: CurrentParent) -> Response: ...

An endpoint that takes anything else (a parameter, another dependency) is refused when the route is
declared, so nothing a route declares is ever skipped.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, get_args

from fastapi import Request, Response
from fastapi.routing import APIRoute

from .auth import CurrentParent
from .edge import check_request

# What `CurrentParent` depends on: the bearer scheme, which also verifies the token.
_PARENT = get_args(CurrentParent)[1].dependency


class ParentRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        dependant = self.dependant
        takes = list(inspect.signature(endpoint).parameters)
        parameters = (
            dependant.path_params,
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.body_params,
        )
        if (
            [d.call for d in dependant.dependencies] != [_PARENT]
            or any(parameters)
            or len(takes) != 2
            or takes[0] != dependant.request_param_name
        ):
            raise TypeError(
                f"{path}: a ParentRoute's endpoint takes (request: Request, parent: CurrentParent)"
            )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            await check_request(request)
            parent = await _PARENT(request)
            response: Response = await endpoint(request, parent)
            return response

        return handler
