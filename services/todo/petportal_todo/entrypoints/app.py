"""HTTP API: GET /api/v1/todo, the signed-in parent's To-Do list and badge."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, Field

from petportal_runtime.auth import CurrentParent
from petportal_runtime.routes import ParentRoute

from ..bootstrap import TodoService, bootstrap
from ..domain import HelpOptions, TodoKind, TodoList
from ..service_layer.projection import ReadModel, parent_todo


class TodoAction(BaseModel):
    href: str


class TodoItemPublic(BaseModel):
    kind: TodoKind
    title: str
    count: int | None = Field(default=None, description="only on unread_messages and overdue_services")
    action: TodoAction


class HelpPublic(BaseModel):
    """What the home screen's Get Help Now may offer this parent."""

    live_chat: bool = Field(description="Care Plan live chat: a program member at a clinic with live chat on")
    booking_mode: Literal["none", "request", "direct"] | None = Field(
        description="the clinic's online booking setting; null when the clinic never sent its settings"
    )


class TodoListPublic(BaseModel):
    badge: int = Field(ge=0, description="the number of items")
    items: list[TodoItemPublic]
    help: HelpPublic


# The hot path of every visit: the token and input checks without FastAPI's per-request dependency
# resolution (see ParentRoute).
router = APIRouter(prefix="/api/v1", tags=["todo"], route_class=ParentRoute)


@router.get("/todo", response_model=TodoListPublic)
async def get_todo(request: Request, parent: CurrentParent) -> Response:
    """The parent's To-Do list; a parent the projection has not seen yet gets the clinic's programs only."""
    read_model: ReadModel = request.app.state.read_model
    body = public_body(*await parent_todo(read_model, parent.clinic_id, parent.client_id))
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def public_body(todo: TodoList, help_options: HelpOptions) -> dict[str, Any]:
    """The answer as `TodoListPublic` documents it (a unit test holds the two equal), built directly:
    FastAPI would validate a returned model again against response_model (kept for the OpenAPI
    document), and even building the models costs more than the rest of the route. `count` is left
    out when absent; the help options' null booking mode is kept (it means "never said")."""
    items = []
    for item in todo.items:
        public: dict[str, Any] = {"kind": item.kind, "title": item.title}
        if item.count is not None:
            public["count"] = item.count
        public["action"] = {"href": item.href}
        items.append(public)
    return {
        "badge": todo.badge,
        "items": items,
        "help": {"live_chat": help_options.live_chat, "booking_mode": help_options.booking_mode},
    }


def create_app(service: TodoService | None = None) -> FastAPI:
    service = service or bootstrap()
    read_model = service.read_model
    app = service.runtime.create_app(
        title="Pet Portal todo",
        routers=[router],
        on_startup=[read_model.ensure_indexes],
        on_shutdown=[read_model.close],
    )
    app.state.read_model = read_model
    return app
