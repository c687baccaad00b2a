"""What text and numbers the portal accepts, decided once for every service (docs/architecture.md,
"What text the portal accepts").

A string may hold any Unicode character except NUL, the other C0 control characters but tab, line
feed and carriage return, and lone surrogates (half of a UTF-16 pair, which UTF-8 cannot encode).
PostgreSQL refuses NUL in text and JSONB and the UTF-8 encoders refuse surrogates, so such a string
would fail only when it is stored or sent back. Numbers must be finite: JSON has no NaN or Infinity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
MAX_JSON_DEPTH = 32

TEXT_ERROR = "string_forbidden_character"
NUMBER_ERROR = "finite_number"
DEPTH_ERROR = "json_too_deep"
NUMBER_MESSAGE = "Input should be a finite number"
DEPTH_MESSAGE = f"JSON should not be nested deeper than {MAX_JSON_DEPTH} levels"

Loc = tuple[str | int, ...]


def text_problem(value: str) -> str | None:
    """Why the portal refuses `value`, or None when it accepts it."""
    match = FORBIDDEN_CHARACTERS.search(value)
    if match is None:
        return None
    code = ord(match.group())
    what = "NUL" if code == 0 else "a lone surrogate" if code >= 0xD800 else "a control character"
    return f"String should not contain {what} (U+{code:04X})"


def escape_text(value: str) -> str:
    """`value` with each refused character written as a \\uXXXX escape: always safe to store or send."""
    return FORBIDDEN_CHARACTERS.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def _check_text(value: Any) -> Any:
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise PydanticCustomError(TEXT_ERROR, problem)
    return value


# The portal's text type for request models: checked before any stripping or other constraint.
Text = Annotated[str, BeforeValidator(_check_text)]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    type: str
    msg: str


def value_problems(
    value: Any, loc: Loc = (), *, item_lists: frozenset[str] = frozenset(), limit: int = 100
) -> Iterator[Problem]:
    """The first `limit` refused strings (keys too), non-finite numbers and too-deep nestings in a
    parsed JSON value, in document order. Iterative, so any depth is safe.

    Items of the top-level lists named in `item_lists` are only checked for depth: a batch route
    checks each of them itself, so that a bad item is rejected on its own, not with the whole batch.
    """
    if limit <= 0:
        return
    if not isinstance(value, dict | list):
        if (problem := _scalar_problem(value)) is not None:
            yield Problem(loc, *problem)
        return
    found = 0
    # One iterator per open container, so that a nested container is walked where it stands and its
    # parent's walk resumes after it. A place is a chain of (parent place, key) pairs, turned into
    # a location only for a problem: most values have none.
    stack: list[tuple[Iterator[tuple[Any, Any]], _Place, int, bool]] = [(_items(value), None, 0, True)]
    while stack:
        items, place, depth, check_values = stack[-1]
        for key, item in items:
            item_place = (place, key)
            if check_values and type(key) is str and (message := text_problem(key)) is not None:
                found += 1
                yield Problem(_loc(loc, item_place), TEXT_ERROR, message)
                if found >= limit:
                    return
            if isinstance(item, dict | list):
                if depth + 1 >= MAX_JSON_DEPTH:
                    found += 1
                    yield Problem(_loc(loc, item_place), DEPTH_ERROR, DEPTH_MESSAGE)
                    if found >= limit:
                        return
                    continue
                checked = check_values and not (depth == 0 and key in item_lists and isinstance(item, list))
                stack.append((_items(item), item_place, depth + 1, checked))
                break
            if check_values and (problem := _scalar_problem(item)) is not None:
                found += 1
                yield Problem(_loc(loc, item_place), *problem)
                if found >= limit:
                    return
        else:
            stack.pop()


_Place = tuple[Any, str | int] | None


def _items(container: dict[Any, Any] | list[Any]) -> Iterator[tuple[Any, Any]]:
    return iter(container.items()) if isinstance(container, dict) else enumerate(container)


def _loc(loc: Loc, place: _Place) -> Loc:
    keys: list[str | int] = []
    while place is not None:
        place, key = place
        keys.append(escape_text(key) if isinstance(key, str) else key)
    return (*loc, *reversed(keys))


def _scalar_problem(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str):
        message = text_problem(value)
        return None if message is None else (TEXT_ERROR, message)
    if isinstance(value, float) and not math.isfinite(value):
        return NUMBER_ERROR, NUMBER_MESSAGE
    return None
