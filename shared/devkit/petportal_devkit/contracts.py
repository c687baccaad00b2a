"""Fake HTTP answers that keep to the owning service's contract, for tests of a service's clients.

Each service's OpenAPI document is committed under `tests/contract/snapshots/openapi/<svc>.json`
(and kept equal to its code by `tests/contract/test_openapi.py`). A test that fakes what a service
answers builds the answer with `upstream_answer`, which validates the JSON body against the response
schema that document gives for that path, method and status. A fake that drifts from what the real
service sends then fails where it is written, instead of testing the client against a shape the
service no longer has.

An answer that breaks the contract on purpose (garbage, to check the client copes) says so with
`off_contract="why"`. A 5xx the document does not list is accepted as it is: failures are not part
of a route's contract.
"""

from __future__ import annotations

import functools
import json as jsonlib
import re
from pathlib import Path
from typing import Any

import httpx
from jsonschema.validators import Draft202012Validator

__all__ = [
    "OPENAPI_SNAPSHOTS",
    "ContractViolation",
    "check_answer",
    "is_checked",
    "openapi_snapshot",
    "upstream_answer",
]

REPO = Path(__file__).resolve().parents[3]
OPENAPI_SNAPSHOTS = REPO / "tests" / "contract" / "snapshots" / "openapi"
# Set on every response `upstream_answer` builds, so a fake network can refuse hand-made ones.
CHECKED = "petportal_contract_checked"

_MISSING: Any = object()


class ContractViolation(AssertionError):
    """A fake answer the owning service's OpenAPI document does not allow."""


@functools.cache
def openapi_snapshot(service: str) -> dict[str, Any]:
    path = OPENAPI_SNAPSHOTS / f"{service}.json"
    if not path.is_file():
        raise ContractViolation(f"no OpenAPI snapshot for {service!r} at {path}")
    document: dict[str, Any] = jsonlib.loads(path.read_text())
    return document


@functools.cache
def _templates(service: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Path templates of the document, literal ones first, each as a full-match pattern."""
    templates = sorted(openapi_snapshot(service)["paths"], key=lambda t: (t.count("{"), t))
    return tuple(
        (template, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))))
        for template in templates
    )


def _template_for(service: str, path: str) -> str:
    for template, pattern in _templates(service):
        if pattern.fullmatch(path):
            return template
    raise ContractViolation(f"{service} has no path {path!r} in its OpenAPI document")


def _response_schema(service: str, method: str, path: str, status: int) -> dict[str, Any] | None:
    """The JSON schema of that answer; None for a documented answer without a JSON body."""
    document = openapi_snapshot(service)
    template = _template_for(service, path)
    operation = document["paths"][template].get(method.lower())
    if operation is None:
        raise ContractViolation(f"{service} has no {method.upper()} {template}")
    responses: dict[str, Any] = operation.get("responses", {})
    response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
    if response is None:
        raise ContractViolation(
            f"{service} documents no {status} for {method.upper()} {template} (only {sorted(responses)})"
        )
    content = response.get("content", {})
    media = content.get("application/json")
    if media is None:
        return None
    schema: dict[str, Any] = media.get("schema", {})
    return schema


@functools.cache
def _validator(service: str, method: str, template_path: str, status: int) -> Draft202012Validator:
    schema = _response_schema(service, method, template_path, status) or {}
    components = openapi_snapshot(service).get("components", {})
    # The schema's `#/components/...` references resolve against the document's components.
    return Draft202012Validator(
        {**schema, "components": components},
        format_checker=Draft202012Validator.FORMAT_CHECKER,  # uuid, date, date-time, email...
    )


def check_answer(service: str, method: str, path: str, status: int, body: Any) -> None:
    """Raise ContractViolation unless `body` (parsed JSON) is what `service` may answer with `status`
    to `method path` according to its committed OpenAPI document."""
    if status >= 500 and str(status) not in _documented_statuses(service, method, path):
        return
    template = _template_for(service, path)
    if _response_schema(service, method, path, status) is None:
        if body is not None:
            raise ContractViolation(f"{service} answers {status} to {method.upper()} {template} without JSON")
        return
    errors = sorted(_validator(service, method, template, status).iter_errors(body), key=str)
    if errors:
        where = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors[:5]
        )
        raise ContractViolation(
            f"a fake {status} answer to {method.upper()} {path} is not what {service} sends "
            f"({template} in tests/contract/snapshots/openapi/{service}.json): {where}"
        )


def _documented_statuses(service: str, method: str, path: str) -> set[str]:
    operation = openapi_snapshot(service)["paths"][_template_for(service, path)].get(method.lower(), {})
    return set(operation.get("responses", {}))


def upstream_answer(
    service: str,
    method: str,
    path: str,
    status: int = 200,
    *,
    json: Any = _MISSING,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    off_contract: str | None = None,
) -> httpx.Response:
    """What `service` answers to `method path`: an httpx.Response whose JSON body (`json`, or
    `content` holding JSON) has been checked against the service's OpenAPI snapshot. `off_contract`
    names why an answer breaks the contract on purpose; it is then not checked."""
    if json is not _MISSING and content is not None:
        raise TypeError("give json or content, not both")
    if off_contract is None:
        body: Any = None
        if json is not _MISSING:
            body = json
        elif content:
            try:
                body = jsonlib.loads(content)
            except ValueError:
                raise ContractViolation(
                    f"a fake answer to {method.upper()} {path} from {service} is not JSON; "
                    "say why with off_contract=..."
                ) from None
        check_answer(service, method, path, status, body)
    extensions = {CHECKED: service}
    if json is not _MISSING:
        return httpx.Response(status, json=json, headers=headers, extensions=extensions)
    return httpx.Response(status, content=content or b"", headers=headers, extensions=extensions)


def is_checked(response: httpx.Response) -> bool:
    """Whether `response` was built by `upstream_answer` (checked, or off contract on purpose)."""
    return CHECKED in response.extensions
