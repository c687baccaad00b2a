"""The messaging HTTP API: each route calls one use case; domain errors are answered by the handlers
registered in `create_app` (ERRORS)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, status

from petportal_runtime.auth import CurrentParent, CurrentStaff
from petportal_runtime.container import container_of
from petportal_runtime.errors import ErrorAnswer, ErrorStatuses
from petportal_runtime.photo_http import (
    JPEG_ANSWER,
    PHOTO_ERRORS,
    UPLOAD_BODY,
    UPLOAD_ERRORS,
    jpeg_response,
    uploaded_photo,
)
from petportal_schemas.envelope import ID_PATTERN

from ..bootstrap import Messaging, bootstrap
from ..domain.model import (
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    ConversationNotFound,
    InvalidMessage,
    Message,
    MessageNotFound,
    Page,
    UnknownClient,
    validate_body,
)
from ..service_layer import services
from ..service_layer.services import ConversationView
from ..service_layer.unit_of_work import MessagingUnitOfWork
from .api import (
    ConversationDetail,
    ConversationLine,
    ConversationList,
    ConversationPublic,
    FeedbackCreate,
    FeedbackList,
    FeedbackPublic,
    MessageCreate,
    MessagePublic,
    MessageSent,
    ReadReceipt,
    ReadUpTo,
)


def _unit_of_work(request: Request) -> MessagingUnitOfWork:
    messaging: Messaging = container_of(request)
    return messaging.unit_of_work()


UnitOfWork = Annotated[MessagingUnitOfWork, Depends(_unit_of_work)]
ClientId = Annotated[str, Path(pattern=ID_PATTERN, description="the client's id in the clinic's PIMS")]
ConversationId = Annotated[uuid.UUID, Path(description="a conversation of the staff member's clinic")]


def _page(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


Paging = Annotated[Page, Depends(_page)]

# Domain errors answered over HTTP, for every route.
ERRORS: ErrorStatuses = {
    UnknownClient: status.HTTP_404_NOT_FOUND,
    MessageNotFound: status.HTTP_404_NOT_FOUND,
    ConversationNotFound: status.HTTP_404_NOT_FOUND,
    services.PhotoNotFound: status.HTTP_404_NOT_FOUND,
    services.TooMuchFeedback: ErrorAnswer(
        status.HTTP_429_TOO_MANY_REQUESTS, headers=lambda e: {"Retry-After": str(e.retry_after)}
    ),
    **PHOTO_ERRORS,
}

Caption = Annotated[
    str,
    Query(max_length=500, description="a few words with the photo (the message's text)"),
]
Size = Annotated[Literal["full", "thumbnail"], Query(description="a 320 px thumbnail, or the photo")]
MessageId = Annotated[uuid.UUID, Path(description="a message with a photo")]


def _caption(caption: str) -> str:
    text = caption.strip()
    try:
        return validate_body(text) if text else "Photo"
    except InvalidMessage as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _receipt(read: list[Message]) -> ReadReceipt:
    return ReadReceipt(message_ids=[m.id for m in read], read_at=read[0].read_at if read else None)


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
    return MessageSent.of(message)


@clinic.post(
    "/clients/{client_id}/messages/photo",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
    responses={404: {"description": "the client is unknown at this clinic"}, **UPLOAD_ERRORS},
)
async def send_photo(
    request: Request, client_id: ClientId, staff: CurrentStaff, uow: UnitOfWork, caption: Caption = ""
) -> MessageSent:
    """A photo to the client (the image as the body), kept re-encoded without its EXIF data."""
    text = _caption(caption)
    photo = await uploaded_photo(request)
    message = await services.send_staff_message(
        uow, clinic_id=staff.clinic_id, client_id=client_id, staff_user_id=staff.sub, body=text, photo=photo
    )
    return MessageSent.of(message)


@clinic.get(
    "/conversations/{conversation_id}/messages/{message_id}/photo",
    response_class=Response,
    responses={**JPEG_ANSWER, 404: {}},
)
async def clinic_photo(
    request: Request,
    conversation_id: ConversationId,
    message_id: MessageId,
    staff: CurrentStaff,
    uow: UnitOfWork,
    size: Size = "full",
) -> Response:
    data, etag = await services.clinic_photo(
        uow,
        clinic_id=staff.clinic_id,
        conversation_id=conversation_id,
        message_id=message_id,
        thumbnail=size == "thumbnail",
    )
    return jpeg_response(request, data, etag)


@clinic.get(
    "/clients/{client_id}/conversation",
    responses={404: {"description": "the client is unknown at this clinic"}},
)
async def client_conversation(
    client_id: ClientId, staff: CurrentStaff, uow: UnitOfWork
) -> ConversationPublic:
    return _public(await services.staff_conversation(uow, clinic_id=staff.clinic_id, client_id=client_id))


_NO_CONVERSATION: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such conversation at this clinic"}
}


@clinic.get("/conversations")
async def conversations(staff: CurrentStaff, uow: UnitOfWork, page: Paging) -> ConversationList:
    """The clinic's conversations, newest activity first, with their unread counts."""
    found = await services.clinic_conversations(uow, clinic_id=staff.clinic_id, page=page)
    return ConversationList(
        conversations=[ConversationLine.of(s) for s in found.conversations], next_offset=found.next_offset
    )


@clinic.get("/conversations/{conversation_id}", responses=_NO_CONVERSATION)
async def conversation(
    conversation_id: ConversationId, staff: CurrentStaff, uow: UnitOfWork, page: Paging
) -> ConversationDetail:
    """One conversation (active or closed) with a page of its messages, newest first. Changes nothing."""
    found = await services.clinic_conversation(
        uow, clinic_id=staff.clinic_id, conversation_id=conversation_id, page=page
    )
    return ConversationDetail(
        **ConversationLine.of(found.summary).model_dump(),
        messages=[MessagePublic.of(m) for m in found.messages],
        next_offset=found.next_offset,
    )


@clinic.post(
    "/conversations/{conversation_id}/read",
    responses={404: {"description": "no such conversation at this clinic, or the message is not in it"}},
)
async def staff_read(
    conversation_id: ConversationId, payload: ReadUpTo, staff: CurrentStaff, uow: UnitOfWork
) -> ReadReceipt:
    """Staff have read the client's messages up to and including `up_to` (each once)."""
    read = await services.staff_reads_up_to(
        uow, clinic_id=staff.clinic_id, conversation_id=conversation_id, up_to=payload.up_to
    )
    return _receipt(read)


@clinic.post("/conversations/{conversation_id}/close", responses=_NO_CONVERSATION)
async def close(conversation_id: ConversationId, staff: CurrentStaff, uow: UnitOfWork) -> ConversationLine:
    """Close the conversation: the next message opens a new one; this one stays readable."""
    closed = await services.close_conversation(
        uow, clinic_id=staff.clinic_id, conversation_id=conversation_id
    )
    return ConversationLine.of(closed)


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
    return _receipt(read)


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
    return MessageSent.of(message)


@parent.post(
    "/conversation/messages/photo",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
    responses={404: {"description": "the client is not (yet) known to messaging"}, **UPLOAD_ERRORS},
)
async def send_my_photo(
    request: Request, me: CurrentParent, uow: UnitOfWork, caption: Caption = ""
) -> MessageSent:
    """The parent sends the clinic a photo (the image as the body: JPEG, PNG, WebP or HEIC), kept
    re-encoded without its EXIF data (so without its GPS position)."""
    text = _caption(caption)
    photo = await uploaded_photo(request)
    message = await services.send_client_message(
        uow, clinic_id=me.clinic_id, client_id=me.client_id, body=text, photo=photo
    )
    return MessageSent.of(message)


@parent.get(
    "/conversation/messages/{message_id}/photo", response_class=Response, responses={**JPEG_ANSWER, 404: {}}
)
async def my_photo(
    request: Request, message_id: MessageId, me: CurrentParent, uow: UnitOfWork, size: Size = "full"
) -> Response:
    data, etag = await services.parent_photo(
        uow,
        clinic_id=me.clinic_id,
        client_id=me.client_id,
        message_id=message_id,
        thumbnail=size == "thumbnail",
    )
    return jpeg_response(request, data, etag)


@parent.post(
    "/feedback",
    status_code=status.HTTP_201_CREATED,
    responses={429: {"description": "enough feedback for today"}},
)
async def give_feedback(
    payload: FeedbackCreate, me: CurrentParent, request: Request, uow: UnitOfWork
) -> FeedbackPublic:
    """What the parent thinks of the portal, for their clinic to read."""
    container: Messaging = container_of(request)
    text = payload.text.strip() if payload.text and payload.text.strip() else None
    feedback = await services.give_feedback(
        uow,
        container.feedback_limiter,
        clinic_id=me.clinic_id,
        client_id=me.client_id,
        rating=payload.rating,
        text=text,
    )
    return FeedbackPublic(
        feedback_id=feedback.id,
        client_id=feedback.client_id,
        rating=feedback.rating,
        text=feedback.text,
        created_at=feedback.created_at,
    )


@clinic.get("/feedback")
async def read_feedback(staff: CurrentStaff, uow: UnitOfWork, page: Paging) -> FeedbackList:
    """The clinic's feedback about the portal, newest first."""
    found = await services.clinic_feedback(uow, clinic_id=staff.clinic_id, page=page)
    more = len(found) > page.limit
    return FeedbackList(
        feedback=[
            FeedbackPublic(
                feedback_id=f.id, client_id=f.client_id, rating=f.rating, text=f.text, created_at=f.created_at
            )
            for f in found[: page.limit]
        ],
        next_offset=page.offset + page.limit if more else None,
    )


def create_app(container: Messaging | None = None) -> FastAPI:
    container = container or bootstrap()
    app = container.runtime.create_app(title="Pet Portal messaging", routers=[clinic, parent], errors=ERRORS)
    app.state.container = container
    return app
