"""The edge of every service's HTTP app, installed by ServiceRuntime.create_app.

- A request body larger than the service's limit gets 413, before it is read whole.
- `check_request`, a dependency of every route, holds JSON bodies, urlencoded form fields, query and
  path parameters to the policy of `petportal_runtime.text` (422 naming each field), before the
  route authenticates or validates anything. A route that takes JSON and is sent another media type
  gets 415. Unparseable JSON (bad syntax or UTF-8, nesting beyond Python's recursion limit) gets
  FastAPI's own 422 or 400.
- One formatter for every validation error of the project: `type`, `loc`, `msg` and plain `ctx`
  values, with refused characters escaped and never the input, so the answer can always be sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .text import TEXT_ERROR, escape_text, text_problem, value_problems

MAX_FORM_FIELDS = 100
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_ITEM_LISTS = "__petportal_item_lists__"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def validated_per_item(*fields: str) -> Callable[[Endpoint], Endpoint]:
    """Marks a batch endpoint whose body lists `fields` it validates item by item.

    The edge still refuses malformed JSON, a too-deep nesting or a bad value elsewhere in the body,
    but leaves refused text and non-finite numbers inside those items to the route, which rejects
    each such item on its own and applies the rest.
    """

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _ITEM_LISTS, frozenset(fields))
        return endpoint

    return mark


# --- validation errors ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return escape_text(value)
    return None


def public_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors as the API shows them; safe to serialise whatever the request held."""
    public = []
    for error in errors:
        item: dict[str, Any] = {
            "type": escape_text(str(error.get("type", "value_error"))),
            "loc": [
                part if isinstance(part, int) and not isinstance(part, bool) else escape_text(str(part))
                for part in error.get("loc", ())
            ],
            "msg": escape_text(str(error.get("msg", ""))),
        }
        ctx = {key: _plain(value) for key, value in (error.get("ctx") or {}).items()}
        if ctx := {key: value for key, value in ctx.items() if value is not None}:
            item["ctx"] = ctx
        public.append(item)
    return public


def validation_error_response(errors: Iterable[Mapping[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": public_errors(errors)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def request_validation_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_error_response(exc.errors())


# --- body size ------------------------------------------------------------------------------------


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, detail="request body too large")


class BodySizeLimitMiddleware:
    """413 once a request body passes `max_bytes` (`max_image_bytes` for a body that says it is an
    image: a photo upload): at once when Content-Length says so, otherwise as soon as the streamed body
    does (raised from `receive`, which FastAPI's routes pass on as is)."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_image_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_image_bytes = max_image_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        media_type: bytes | None = None
        chunked = False
        for key, value in scope["headers"]:
            key = key.lower()
            if key == b"content-length":
                declared = value.strip()
            elif key == b"content-type":
                media_type = value
            elif key == b"transfer-encoding":
                chunked = True
        limit = self.max_bytes
        is_image = media_type is not None and media_type.strip().lower().startswith(b"image/")
        if self.max_image_bytes is not None and is_image:
            limit = self.max_image_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send)
            return
        if not chunked:
            # The server reads no more than Content-Length says (no body without one), and that is
            # within the limit: nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": "request body too large"}, status.HTTP_413_CONTENT_TOO_LARGE)
        await response(scope, receive, send)


# --- body, query and path checks ------------------------------------------------------------------


def _error(loc: tuple[str | int, ...], type_: str, msg: str, **ctx: Any) -> dict[str, Any]:
    return {"type": type_, "loc": loc, "msg": msg, **({"ctx": ctx} if ctx else {})}


def _text_errors(pairs: Iterable[tuple[str, str]], where: str) -> list[dict[str, Any]]:
    errors = []
    for name, value in pairs:
        problem = text_problem(name) or text_problem(value)
        if problem is not None:
            errors.append(_error((where, escape_text(name)), TEXT_ERROR, problem))
    return errors


def url_errors(scope: Scope) -> list[dict[str, Any]]:
    """Path and query parameters, as the server decoded them (bad UTF-8 is already U+FFFD)."""
    path = [(str(k), v) for k, v in scope.get("path_params", {}).items() if isinstance(v, str)]
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return _text_errors(path, "path") + _text_errors(query, "query")


def json_errors(value: Any, item_lists: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The text policy on a parsed JSON body."""
    return [_error(p.loc, p.type, p.msg) for p in value_problems(value, ("body",), item_lists=item_lists)]


def form_errors(body: bytes) -> list[dict[str, Any]]:
    try:
        fields = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS
        )
    except UnicodeDecodeError:
        return [_error(("body",), "form_invalid", "Form data should be UTF-8")]
    except ValueError:
        return [_error(("body",), "form_invalid", f"Form data should have at most {MAX_FORM_FIELDS} fields")]
    return _text_errors(fields, "body")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def check_request(request: Request) -> None:
    """An app-wide dependency: it runs before the route's own (authentication, then its parameters)."""
    if errors := url_errors(request.scope):
        raise RequestValidationError(errors)
    route = request.scope.get("route")
    body_field = route.body_field if isinstance(route, APIRoute) else None
    media_type = _media_type(request.headers.get("content-type"))
    if body_field is not None and isinstance(body_field.field_info, Form):
        form = await request.form()  # already parsed by FastAPI, and cached
        errors = _text_errors(((k, v) for k, v in form.multi_items() if isinstance(v, str)), "body")
    elif body_field is not None:
        if not await request.body():
            return
        if not _is_json(media_type):
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="the body must be application/json"
            )
        try:
            value = await request.json()  # FastAPI has parsed it already: this is its cached value
        except (ValueError, RecursionError):
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail="There was an error parsing the body"
            ) from None
        assert isinstance(route, APIRoute)
        errors = json_errors(value, getattr(route.endpoint, _ITEM_LISTS, frozenset()))
    elif media_type == FORM_MEDIA_TYPE:
        errors = form_errors(await request.body())
    else:
        return
    if errors:
        raise RequestValidationError(errors)


EDGE_DEPENDENCIES = [Depends(check_request)]


def install_edge(app: FastAPI, *, max_body_bytes: int, max_image_body_bytes: int | None = None) -> None:
    """The error formatter and the body size limits; the app is created with EDGE_DEPENDENCIES."""
    app.add_exception_handler(RequestValidationError, request_validation_error_handler)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=max_body_bytes, max_image_bytes=max_image_body_bytes
    )
