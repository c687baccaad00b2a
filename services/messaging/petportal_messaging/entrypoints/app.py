"""The messaging HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, status

from petportal_runtime.auth import CurrentParent, CurrentStaff
from petportal_runtime.service import ServiceRuntime
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import bootstrap
from ..domain.model import UnknownClient
from ..service_layer import services
from ..service_layer.services import ConversationView
from .api import ConversationPublic, MessageCreate, MessagePublic, MessageSent


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
ClientId = Annotated[str, Path(pattern=ID_PATTERN, description="the client's id in the clinic's PIMS")]


def _public(view: ConversationView) -> ConversationPublic:
    return ConversationPublic(
        conversation_id=view.conversation_id, messages=[MessagePublic.of(m) for m in view.messages]
    )


def _not_found(exc: UnknownClient) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc))


clinic = APIRouter(prefix="/clinic/v1", tags=["clinic"])
parent = APIRouter(prefix="/api/v1", tags=["parent"])


@clinic.post(
    "/clients/{client_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "the client is unknown at this clinic"}},
)
async def send_message(
    client_id: ClientId, payload: MessageCreate, staff: CurrentStaff, runtime: Runtime
) -> MessageSent:
    try:
        async with runtime.transaction() as session:
            message = await services.send_staff_message(
                session,
                clinic_id=staff.clinic_id,
                client_id=client_id,
                staff_user_id=staff.sub,
                body=payload.body,
            )
    except UnknownClient as exc:
        raise _not_found(exc) from None
    return MessageSent(
        message_id=message.id, conversation_id=message.conversation_id, sent_at=message.sent_at
    )


@clinic.get(
    "/clients/{client_id}/conversation",
    responses={404: {"description": "the client is unknown at this clinic"}},
)
async def client_conversation(
    client_id: ClientId, staff: CurrentStaff, runtime: Runtime
) -> ConversationPublic:
    try:
        async with runtime.transaction() as session:
            view = await services.staff_conversation(session, clinic_id=staff.clinic_id, client_id=client_id)
    except UnknownClient as exc:
        raise _not_found(exc) from None
    return _public(view)


@parent.get("/conversation")
async def my_conversation(me: CurrentParent, runtime: Runtime) -> ConversationPublic:
    """The parent's conversation; the staff messages it returns are marked read."""
    async with runtime.transaction() as session:
        view = await services.read_conversation(session, clinic_id=me.clinic_id, client_id=me.client_id)
    return _public(view)


def create_app(runtime: ServiceRuntime | None = None) -> FastAPI:
    runtime = runtime or bootstrap()
    return runtime.create_app(title="Pet Portal messaging", routers=[clinic, parent])
