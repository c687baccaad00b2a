"""The messaging HTTP API: each route calls one use case; domain errors are answered by the handlers
registered in `create_app` (ERRORS)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Request, status

from petportal_runtime.auth import CurrentParent, CurrentStaff
from petportal_runtime.container import container_of
from petportal_runtime.errors import ErrorStatuses
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import Messaging, bootstrap
from ..domain.model import MessageNotFound, UnknownClient
from ..service_layer import services
from ..service_layer.services import ConversationView
from ..service_layer.unit_of_work import MessagingUnitOfWork
from .api import ConversationPublic, MessageCreate, MessagePublic, MessageSent, ReadReceipt, ReadUpTo


def _unit_of_work(request: Request) -> MessagingUnitOfWork:
    messaging: Messaging = container_of(request)
    return messaging.unit_of_work()


UnitOfWork = Annotated[MessagingUnitOfWork, Depends(_unit_of_work)]
ClientId = Annotated[str, Path(pattern=ID_PATTERN, description="the client's id in the clinic's PIMS")]

# Domain errors answered over HTTP, for every route.
ERRORS: ErrorStatuses = {
    UnknownClient: status.HTTP_404_NOT_FOUND,
    MessageNotFound: status.HTTP_404_NOT_FOUND,
}


def _public(view: ConversationView) -> ConversationPublic:
    return ConversationPublic(
        conversation_id=view.conversation_id, messages=[MessagePublic.of(m) for m in view.messages]
    )


clinic = APIRouter(prefix="/clinic/v1", tags=["clinic"])
parent = APIRouter(prefix="/api/v1", tags=["parent"])


@clinic.post(
    "/clients/{client_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "the client is unknown at this clinic"}},
)
async def send_message(
    client_id: ClientId, payload: MessageCreate, staff: CurrentStaff, uow: UnitOfWork
) -> MessageSent:
    message = await services.send_staff_message(
        uow, clinic_id=staff.clinic_id, client_id=client_id, staff_user_id=staff.sub, body=payload.body
    )
    return MessageSent(
        message_id=message.id, conversation_id=message.conversation_id, sent_at=message.sent_at
    )


@clinic.get(
    "/clients/{client_id}/conversation",
    responses={404: {"description": "the client is unknown at this clinic"}},
)
async def client_conversation(
    client_id: ClientId, staff: CurrentStaff, uow: UnitOfWork
) -> ConversationPublic:
    return _public(await services.staff_conversation(uow, clinic_id=staff.clinic_id, client_id=client_id))


@parent.get("/conversation")
async def my_conversation(me: CurrentParent, uow: UnitOfWork) -> ConversationPublic:
    """The parent's active conversation, else their latest closed one. Changes nothing: reading is
    `POST /api/v1/conversation/read`."""
    return _public(await services.parent_conversation(uow, clinic_id=me.clinic_id, client_id=me.client_id))


@parent.post(
    "/conversation/read",
    responses={404: {"description": "the message is not in this parent's conversations"}},
)
async def read_my_conversation(payload: ReadUpTo, me: CurrentParent, uow: UnitOfWork) -> ReadReceipt:
    """Mark every unread staff message up to and including `up_to` read (each once: a repeat changes
    nothing and publishes nothing)."""
    read = await services.parent_reads_up_to(
        uow, clinic_id=me.clinic_id, client_id=me.client_id, up_to=payload.up_to
    )
    return ReadReceipt(message_ids=[m.id for m in read], read_at=read[0].read_at if read else None)


@parent.post(
    "/conversation/messages",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "the client is not (yet) known to messaging"}},
)
async def reply(payload: MessageCreate, me: CurrentParent, uow: UnitOfWork) -> MessageSent:
    """The parent writes to the clinic: appended to the active conversation, opened if there is none."""
    message = await services.send_client_message(
        uow, clinic_id=me.clinic_id, client_id=me.client_id, body=payload.body
    )
    return MessageSent(
        message_id=message.id, conversation_id=message.conversation_id, sent_at=message.sent_at
    )


def create_app(container: Messaging | None = None) -> FastAPI:
    container = container or bootstrap()
    app = container.runtime.create_app(title="Pet Portal messaging", routers=[clinic, parent], errors=ERRORS)
    app.state.container = container
    return app
