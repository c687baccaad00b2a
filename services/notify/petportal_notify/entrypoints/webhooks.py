"""Inbound SMS webhook: Twilio's signature check, form parsing and the TwiML reply document."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ..bootstrap import Notify
from ..domain.replies import response_document
from ..domain.twilio import signature_valid
from ..service_layer import deliveries, services
from .api import InboundSms, SmsStatusCallback
from .dependencies import NotifyContainer

SIGNATURE_HEADER = "X-Twilio-Signature"


def signed_url(public_base_url: str, request: Request) -> str:
    """The URL Twilio requested: the portal's public address (the gateway's, behind a load balancer)
    with this request's path and query — never the Host this service was reached at."""
    query = request.url.query
    return public_base_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


router = APIRouter(prefix="/webhooks/sms", tags=["webhooks"])
Signature = Annotated[str | None, Header(alias=SIGNATURE_HEADER, include_in_schema=False)]
M = TypeVar("M", bound=BaseModel)


async def _signed_form(request: Request, notify: Notify, signature: str | None, model: type[M]) -> M:
    """The form Twilio posted, once its signature is checked (403 otherwise, nothing stored)."""
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
        return model.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def _form_body(required: list[str], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The OpenAPI request body of a Twilio webhook: form fields, all strings."""
    fields = {name: {"type": "string"} for name in [*required, *optional]}
    schema = {"type": "object", "required": required, "properties": fields}
    return {"content": {"application/x-www-form-urlencoded": {"schema": schema}}, "required": True}


_FORM_SCHEMA = _form_body(["From", "To", "Body"])


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
async def inbound_sms(request: Request, notify: NotifyContainer, signature: Signature = None) -> Response:
    form = await _signed_form(request, notify, signature, InboundSms)
    result = await services.receive_sms(
        notify.unit_of_work(),
        to_number=form.to_number,
        from_number=form.from_number,
        body=form.body,
        phones=notify.phones,
        default_region=notify.settings.default_phone_region,
    )
    return Response(response_document(result.reply), media_type="application/xml")


_STATUS_FORM_SCHEMA = _form_body(["MessageSid", "MessageStatus"], ("ErrorCode",))


@router.post(
    "/status",
    openapi_extra={"requestBody": _STATUS_FORM_SCHEMA},
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={403: {"description": "missing or bad signature"}},
)
async def delivery_status(request: Request, notify: NotifyContainer, signature: Signature = None) -> Response:
    """Twilio's status callback for a text notify sent: delivered, undelivered or failed is recorded
    on the delivery (other statuses, and unknown message ids, change nothing)."""
    form = await _signed_form(request, notify, signature, SmsStatusCallback)
    await deliveries.provider_status(
        notify.unit_of_work(), form.message_sid, form.message_status, form.error_code
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
