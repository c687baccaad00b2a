"""The notify HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, status

from petportal_runtime.auth import CurrentParent, CurrentStaff
from petportal_runtime.errors import ErrorStatuses
from petportal_runtime.internal import PREFIX as INTERNAL_PREFIX
from petportal_runtime.internal import InternalCaller
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import Notify, bootstrap
from ..domain.delivery import Delivery, Status, Template
from ..service_layer import deliveries, services
from . import webhooks
from .api import (
    DeliveriesPublic,
    DeliveryPublic,
    DeliveryRequest,
    InboundTextPublic,
    InboundTextsPublic,
    PreferencesPublic,
    PreferencesUpdate,
    SmsStatusPublic,
)
from .dependencies import NotifyContainer, UnitOfWork

ClientId = Annotated[str, Path(pattern=ID_PATTERN, description="the client's id in the clinic's PIMS")]

parent = APIRouter(prefix="/api/v1/notifications", tags=["parent"])
clinic = APIRouter(prefix="/clinic/v1", tags=["clinic"])
internal = APIRouter(prefix=f"{INTERNAL_PREFIX}/v1", tags=["internal"])


@parent.get("/preferences")
async def get_preferences(me: CurrentParent, uow: UnitOfWork) -> PreferencesPublic:
    consent = await services.preferences(uow, me.clinic_id, me.client_id)
    return PreferencesPublic.of(consent)


@parent.put("/preferences")
async def put_preferences(me: CurrentParent, update: PreferencesUpdate, uow: UnitOfWork) -> PreferencesPublic:
    consent = await services.update_preferences(
        uow,
        me.clinic_id,
        me.client_id,
        sms_opted_in=update.sms_opted_in,
        email_opted_in=update.email_opted_in,
    )
    return PreferencesPublic.of(consent)


@clinic.get(
    "/clients/{client_id}/sms-status",
    responses={404: {"description": "the client is unknown at this clinic"}},
)
async def sms_status(client_id: ClientId, staff: CurrentStaff, uow: UnitOfWork) -> SmsStatusPublic:
    consent = await services.sms_status(uow, staff.clinic_id, client_id)
    return SmsStatusPublic(
        sms_opt_out_indicator=consent.sms_opt_out_indicator,
        email_opt_out_indicator=not consent.email_opted_in,
    )


@clinic.get("/inbound-texts")
async def inbound_texts(
    staff: CurrentStaff,
    uow: UnitOfWork,
    unmatched: Annotated[
        bool, Query(description="only texts from numbers on none of the clinic's contacts")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> InboundTextsPublic:
    """Texts to the clinic's numbers, newest first: a text from an unknown number is never dropped, and
    this is where staff read it."""
    texts = await services.inbound_texts(uow, staff.clinic_id, unmatched_only=unmatched, limit=limit)
    return InboundTextsPublic(texts=[InboundTextPublic(**t.__dict__) for t in texts])


@clinic.get("/deliveries")
async def list_deliveries(
    staff: CurrentStaff,
    uow: UnitOfWork,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    client_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveriesPublic:
    """What the clinic sent or will send, newest first: reminders, notifications, sign-in codes, with
    their state (and why one was not sent: opted out, no address, provider refused...)."""
    found = await deliveries.deliveries(
        uow, staff.clinic_id, status=status_, client_id=client_id, limit=limit
    )
    return DeliveriesPublic(deliveries=[DeliveryPublic.of(d) for d in found])


@internal.post(
    "/deliveries",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "the client is not a contact of the clinic"}},
)
async def request_delivery(
    _caller: InternalCaller, body: DeliveryRequest, notify: NotifyContainer
) -> DeliveryPublic:
    """Queue a message for sending now; the same key again returns the same delivery, sends nothing."""
    delivery = await deliveries.request(
        notify.unit_of_work(),
        Delivery(
            key=f"request:{body.key}",
            clinic_id=body.clinic_id,
            client_id=body.client_id,
            channel=body.channel,
            template=Template(body.template),
            params=body.params.model_dump(),
            not_before=deliveries.now(),
        ),
    )
    notify.dispatcher.wake()
    return DeliveryPublic.of(delivery)


# Domain errors answered over HTTP, for every route.
ERRORS: ErrorStatuses = {
    deliveries.UnknownRecipient: status.HTTP_404_NOT_FOUND,
    services.UnknownClient: status.HTTP_404_NOT_FOUND,
    services.UnknownClinicNumber: status.HTTP_404_NOT_FOUND,
}


def create_app(container: Notify | None = None) -> FastAPI:
    container = container or bootstrap()
    app = container.runtime.create_app(
        title="Pet Portal notify", routers=[parent, clinic, internal, webhooks.router], errors=ERRORS
    )
    app.state.container = container
    return app
