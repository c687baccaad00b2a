"""The notify HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, status

from petportal_runtime.auth import CurrentParent, CurrentStaff
from petportal_runtime.service import ServiceRuntime
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import Notify, bootstrap
from ..service_layer import services
from . import webhooks
from .api import PreferencesPublic, PreferencesUpdate, SmsStatusPublic


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
ClientId = Annotated[str, Path(pattern=ID_PATTERN, description="the client's id in the clinic's PIMS")]

parent = APIRouter(prefix="/api/v1/notifications", tags=["parent"])
clinic = APIRouter(prefix="/clinic/v1", tags=["clinic"])


@parent.get("/preferences")
async def get_preferences(me: CurrentParent, runtime: Runtime) -> PreferencesPublic:
    async with runtime.transaction() as session:
        consent = await services.preferences(session, me.clinic_id, me.client_id)
    return PreferencesPublic.of(consent)


@parent.put("/preferences")
async def put_preferences(
    me: CurrentParent, update: PreferencesUpdate, runtime: Runtime
) -> PreferencesPublic:
    async with runtime.transaction() as session:
        consent = await services.update_preferences(
            session,
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
async def sms_status(client_id: ClientId, staff: CurrentStaff, runtime: Runtime) -> SmsStatusPublic:
    try:
        async with runtime.transaction() as session:
            consent = await services.sms_status(session, staff.clinic_id, client_id)
    except services.UnknownClient as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    return SmsStatusPublic(sms_opt_out_indicator=consent.sms_opt_out_indicator)


def create_app(notify: Notify | None = None) -> FastAPI:
    notify = notify or bootstrap()
    app = notify.runtime.create_app(title="Pet Portal notify", routers=[parent, clinic, webhooks.router])
    app.state.notify = notify
    return app
