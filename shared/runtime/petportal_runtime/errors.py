"""Domain errors answered over HTTP: each service maps its own errors to statuses once, at app
creation (`ServiceRuntime.create_app(errors=...)`), so routes never catch them.

The answer is FastAPI's usual error body, `{"detail": str(error)}`: a domain error's message is
written to be shown to the caller (no personal data beyond what the caller sent). A `Refusal` names the
request's field at fault: `{"detail", "field"}`, or, answered 422, a validation error like any other
(`loc` ["body", field]).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response, status
from fastapi.responses import JSONResponse

from .edge import validation_error_response


class Refusal(Exception):
    """A request the domain's rules refuse, and the field of the request at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ErrorAnswer:
    """A status, and headers taken from the error (`Retry-After`, `WWW-Authenticate`)."""

    status: int
    headers: Callable[[Any], Mapping[str, str]] | None = None


ErrorStatuses = Mapping[type[Exception], int | ErrorAnswer]


def install_error_handlers(app: FastAPI, errors: ErrorStatuses) -> None:
    for error, answer in errors.items():
        app.add_exception_handler(
            error, _handler(answer if isinstance(answer, ErrorAnswer) else ErrorAnswer(answer))
        )


def _handler(answer: ErrorAnswer) -> Callable[[Request, Exception], Response]:
    def respond(_request: Request, exc: Exception) -> Response:
        headers = dict(answer.headers(exc)) if answer.headers else None
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, Refusal):
            if answer.status == status.HTTP_422_UNPROCESSABLE_CONTENT:
                error = {"type": "value_error", "loc": ("body", exc.field), "msg": str(exc)}
                return validation_error_response([error])
            body["field"] = exc.field
        return JSONResponse(body, status_code=answer.status, headers=headers)

    return respond
