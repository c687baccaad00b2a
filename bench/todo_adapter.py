"""What the benchmarks need from the todo service's own code, imported from services/todo.

Reading its MongoDB documents through `petportal_todo.adapters.mongo.parent_view` keeps the bench
right when the document layout changes (it already moved instants to epoch microseconds once).
The MongoDB baseline writes documents `parent_view` also reads (unread_messages, sms_opted_out_us).
"""

from __future__ import annotations

import sys
from functools import cache
from types import ModuleType
from typing import Any

from .infra import SERVICES_DIR

PARENTS = "parents"
INBOX = "inbox"


@cache
def todo_mongo_adapter() -> ModuleType:
    path = str(SERVICES_DIR / "todo")
    if path not in sys.path:
        sys.path.insert(0, path)
    from petportal_todo.adapters import mongo

    return mongo


def todo_fetch_max_wait_ms() -> int:
    """How long the todo service's consumer lets a fetch wait (its setting's default)."""
    todo_mongo_adapter()  # services/todo on sys.path
    from petportal_todo.settings import TodoSettings

    return int(TodoSettings.model_fields["todo_fetch_max_wait_ms"].default)


def parent_state(doc: dict[str, Any]) -> tuple[int, bool]:
    """(unread messages, opted out of SMS?) of one `parents` document.

    todo keeps the set of unread message ids; the raw baseline keeps a running count.
    """
    view = todo_mongo_adapter().parent_view(doc)
    unread = view.unread if "unread_message_ids" in doc else int(doc.get("unread_messages", 0))
    return unread, bool(view.sms_opted_out)


def collections() -> tuple[str, str]:
    """Names of the parents and inbox collections (the adapter's constants)."""
    mongo = todo_mongo_adapter()
    return getattr(mongo, "PARENTS", PARENTS), getattr(mongo, "INBOX", INBOX)
