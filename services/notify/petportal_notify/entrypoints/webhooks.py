"""Inbound SMS webhook: signature check, form parsing and the provider reply document."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ..domain.replies import response_document
from ..service_layer import services
from .api import InboundSms
from .dependencies import NotifyContainer

SIGNATURE_HEADER = "X-PetPortal-Signature"


def sign(secret: str, raw_body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, raw_body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(sign(secret, raw_body).encode(), header.strip().encode())


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
    secret = notify.settings.sms_webhook_secret
    # Unsigned requests are only accepted where no secret is set, which production forbids.
    if secret and not signature_valid(secret, raw, signature):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid webhook signature")
    try:
        fields = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        form = InboundSms.model_validate(fields)
    except UnicodeDecodeError:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body",), "msg": "not UTF-8", "input": None}]
        ) from None
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
