"""HTTP API: GET /api/v1/todo, the signed-in parent's To-Do list and badge."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, Field

from petportal_runtime.auth import CurrentParent

from ..bootstrap import TodoService, bootstrap
from ..domain import TodoKind, TodoList
from ..service_layer.projection import ReadModel, parent_todo_list


class TodoAction(BaseModel):
    href: str


class TodoItemPublic(BaseModel):
    kind: TodoKind
    title: str
    count: int | None = Field(default=None, description="only on unread_messages and overdue_services")
    action: TodoAction


class TodoListPublic(BaseModel):
    badge: int = Field(ge=0, description="the number of items")
    items: list[TodoItemPublic]

    @classmethod
    def of(cls, todo: TodoList) -> TodoListPublic:
        return cls(
            badge=todo.badge,
            items=[
                TodoItemPublic(kind=i.kind, title=i.title, count=i.count, action=TodoAction(href=i.href))
                for i in todo.items
            ],
        )


router = APIRouter(prefix="/api/v1", tags=["todo"])


@router.get("/todo", response_model=TodoListPublic, response_model_exclude_none=True)
async def get_todo(parent: CurrentParent, request: Request) -> Response:
    """The parent's To-Do list; a parent the projection has not seen yet gets the clinic's programs only."""
    read_model: ReadModel = request.app.state.read_model
    todo = TodoListPublic.of(await parent_todo_list(read_model, parent.clinic_id, parent.client_id))
    # Serialised here: FastAPI would validate the model again against response_model (kept for the
    # OpenAPI document), which costs more than the rest of the request.
    return Response(todo.model_dump_json(exclude_none=True), media_type="application/json")


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
