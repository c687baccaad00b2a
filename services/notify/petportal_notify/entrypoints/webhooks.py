"""Inbound SMS webhook: Twilio's signature check, form parsing and the TwiML reply document."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ..domain.replies import response_document
from ..domain.twilio import signature_valid
from ..service_layer import services
from .api import InboundSms
from .dependencies import NotifyContainer

SIGNATURE_HEADER = "X-Twilio-Signature"


def signed_url(public_base_url: str, request: Request) -> str:
    """The URL Twilio requested: the portal's public address (the gateway's, behind a load balancer)
    with this request's path and query — never the Host this service was reached at."""
    query = request.url.query
    return public_base_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


router = APIRouter(prefix="/webhooks/sms", tags=["webhooks"])

_FORM_SCHEMA = {
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["From", "To", "Body"],
                "properties": {
                    "From": {"type": "string"},
                    "To": {"type": "string"},
                    "Body": {"type": "string"},
                },
            }
        }
    },
    "required": True,
}


@router.post(
    "/inbound",
    openapi_extra={"requestBody": _FORM_SCHEMA},
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}, "description": "reply document"},
        403: {"description": "missing or bad signature"},
        404: {"description": "unknown clinic number"},
    },
)
async def inbound_sms(
    request: Request,
    notify: NotifyContainer,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER, include_in_schema=False)] = None,
) -> Response:
    raw = await request.body()  # at most MAX_REQUEST_BODY_BYTES (the runtime answers 413 beyond)
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body",), "msg": "not UTF-8", "input": None}]
        ) from None
    token = notify.settings.twilio_auth_token
    # Unsigned requests are only accepted where no auth token is set, which production forbids.
    url = signed_url(notify.settings.public_base_url, request)
    if token is not None and not signature_valid(token.get_secret_value(), url, pairs, signature):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid webhook signature")
    try:
        fields = dict(reversed(pairs))  # the first value of a repeated field
        form = InboundSms.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    result = await services.receive_sms(
        notify.unit_of_work(),
        to_number=form.to_number,
        from_number=form.from_number,
        body=form.body,
        default_region=notify.settings.default_phone_region,
    )
    return Response(response_document(result.reply), media_type="application/xml")
