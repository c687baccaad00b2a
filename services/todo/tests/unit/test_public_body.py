"""The route's hand-built answer is exactly what its documented response model says."""

import pytest

from petportal_todo.domain import HelpOptions, TodoItem, TodoList
from petportal_todo.entrypoints.app import HelpPublic, TodoAction, TodoItemPublic, TodoListPublic, public_body

pytestmark = pytest.mark.unit

LISTS = [
    TodoList(),
    TodoList(
        (
            TodoItem("unread_messages", "You have 2 unread messages", "/messages", count=2),
            TodoItem("sms_opt_in", "Get texts from your clinic", "/settings/sms"),
            TodoItem("overdue_services", "3 services overdue", "/pets", count=3),
        )
    ),
]
HELP = [HelpOptions(), HelpOptions(live_chat=True, booking_mode="direct")]


@pytest.mark.parametrize("todo", LISTS)
@pytest.mark.parametrize("help_options", HELP)
def test_the_answer_is_the_documented_model(todo: TodoList, help_options: HelpOptions) -> None:
    body = public_body(todo, help_options)

    model = TodoListPublic(
        badge=todo.badge,
        items=[
            TodoItemPublic(kind=i.kind, title=i.title, count=i.count, action=TodoAction(href=i.href))
            for i in todo.items
        ],
        help=HelpPublic(live_chat=help_options.live_chat, booking_mode=help_options.booking_mode),
    )
    expected = model.model_dump(mode="json", exclude_none=True)
    expected["help"] = model.help.model_dump(mode="json")  # its null booking mode is kept
    assert body == expected
    assert TodoListPublic.model_validate(body) == model
