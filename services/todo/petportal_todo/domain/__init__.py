"""The To-Do domain: pure functions and values, no I/O."""

from .model import (
    ClinicView,
    ParentView,
    Program,
    RequestAnswer,
    TodoItem,
    TodoKind,
    TodoList,
    parent_id,
    todo_list,
)
from .projection import (
    CONSUMED_EVENTS,
    ERASED,
    ClinicChange,
    ParentChange,
    ProjectionChanges,
    erasure_requests,
    project,
    unique_events,
)

__all__ = [
    "CONSUMED_EVENTS",
    "ERASED",
    "ClinicChange",
    "ClinicView",
    "ParentChange",
    "ParentView",
    "Program",
    "ProjectionChanges",
    "RequestAnswer",
    "TodoItem",
    "TodoKind",
    "TodoList",
    "erasure_requests",
    "parent_id",
    "project",
    "todo_list",
    "unique_events",
]
