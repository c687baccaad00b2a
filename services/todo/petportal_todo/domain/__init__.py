"""The To-Do domain: pure functions and values, no I/O."""

from .model import (
    ClinicView,
    HelpOptions,
    ParentView,
    Program,
    RequestAnswer,
    TodoItem,
    TodoKind,
    TodoList,
    help_options,
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
    "HelpOptions",
    "ParentChange",
    "ParentView",
    "Program",
    "ProjectionChanges",
    "RequestAnswer",
    "TodoItem",
    "TodoKind",
    "TodoList",
    "erasure_requests",
    "help_options",
    "parent_id",
    "project",
    "todo_list",
    "unique_events",
]
