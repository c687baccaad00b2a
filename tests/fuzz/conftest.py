"""Bounded fuzzing of each service against its own OpenAPI document, in-process.

schemathesis generates requests for every operation, valid ones and ones that break the schema
(wrong types, missing fields, arbitrary text), about half of them with one hostile value put in
(NUL, control characters, lone surrogates, NaN, Infinity), and each answer must not be a server
error and must match the documented schema and media type. The app runs with its lifespan
(database, broker, consumers) on an event loop of its own; runs are derandomised, so a failure
repeats. PETPORTAL_FUZZ_EXAMPLES (default 25) is the number of examples per operation and
mode: raise it for a longer hunt.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from anyio.from_thread import start_blocking_portal
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from petportal_devkit.testing import DatabaseFactory, app_client, run_sync
from petportal_devkit.tokens import TokenMinter
from petportal_runtime.migrations import upgrade

EXAMPLES = int(os.environ.get("PETPORTAL_FUZZ_EXAMPLES", "25"))
BASE_URL = "http://service"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
_REQUEST_ARGS = ("method", "url", "headers", "files", "data", "params", "auth", "cookies", "json")

Draw = Callable[[st.SearchStrategy[Any]], Any]
CLINIC, CLIENT = "fuzz-clinic", "k1"
KID = "fuzz-key"


class Keys:
    """Signs staff and parent tokens that the service under test accepts (its verifier has the key)."""

    def __init__(self) -> None:
        self._tokens = TokenMinter(kid=KID, ttl=timedelta(minutes=30))
        self.verifier = self._tokens.verifier

    def staff(self) -> dict[str, str]:
        return self._tokens.staff_headers(CLINIC, sub="staff-fuzz")

    def parent(self) -> dict[str, str]:
        return self._tokens.parent_headers(CLINIC, CLIENT, sub="acct-fuzz")

    def by_path(self, path: str) -> dict[str, str]:
        """Staff credentials for the clinic's routes, the parent's for the portal's."""
        if path.startswith("/clinic/"):
            return self.staff()
        return self.parent() if path.startswith("/api/") else {}


def migrated_database(make_database: DatabaseFactory, package: Any, *seed: str) -> str:
    """A fresh database of the service `package` at its latest migration, with `seed` SQL run in it."""
    url = make_database(f"{package.__name__.removeprefix('petportal_')}_fuzz")
    upgrade(Path(package.__file__).parent / "migrations", url)

    async def run() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            for statement in seed:
                await conn.execute(text(statement))
        await engine.dispose()

    run_sync(run())
    return url


def service_settings(kafka_bootstrap: str, **values: Any) -> dict[str, Any]:
    return {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_session_timeout_ms": 2000,
        **values,
    }


# The app's own threads (the Kafka client) use `random` while hypothesis draws; not our strategies.
SERVICE_THREADS_USE_RANDOM = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
)


def sometimes(draw: Draw) -> bool:
    return bool(draw(st.booleans()))


def _no_steering(_case: Case, _draw: Draw) -> None:
    return None


# What generated text rarely holds and the portal must refuse cleanly (docs/architecture.md, "What text
# the portal accepts"), plus characters it accepts. What only JSON can carry (lone surrogates, NaN,
# Infinity) goes in as a placeholder string, written out when the body is serialised, so that
# schemathesis can still print the case.
HOSTILE_TEXT = ["\x00", "Rex\x00", "\x1b[31m", "a\x07b", "\x7f", "\t\n\r", "\u2028"]
JSON_ONLY = {
    '"<lone surrogate>"': '"\\ud800"',
    '"<text, lone surrogate>"': '"tail \\udfff"',
    '"<NaN>"': "NaN",
    '"<Infinity>"': "Infinity",
    '"<-Infinity>"': "-Infinity",
}
HOSTILE_JSON = [*HOSTILE_TEXT, *(placeholder.strip('"') for placeholder in JSON_ONLY)]


def _json_bytes(value: Any) -> bytes:
    text = json.dumps(value)
    for placeholder, raw in JSON_ONLY.items():
        text = text.replace(placeholder, raw)
    return text.encode()


def _slots(value: Any) -> Iterator[tuple[dict[Any, Any] | list[Any], Any]]:
    """Every (container, key) of a JSON value, nested ones included."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict | list):
            keys = list(current) if isinstance(current, dict) else range(len(current))
            for key in keys:
                yield current, key
                stack.append(current[key])


def _inject_hostile(case: Case, draw: Draw) -> None:
    """In about half the cases, one hostile value in place of a generated one: in the body (nested
    values too) when there is one, else in the query or the path."""
    if not sometimes(draw):
        return
    in_json = case.media_type is not None and "json" in case.media_type
    body = [(c, k, in_json) for c, k in _slots(case.body)] if isinstance(case.body, dict | list) else []
    params = [(p, k, False) for p in (case.query, case.path_parameters) if isinstance(p, dict) for k in p]
    if slots := body or params:
        # An index, not `sampled_from(slots)`: when the app's threads touch `random` during a draw,
        # hypothesis builds the strategy's repr for its warning, and the repr of the slots repeats
        # the whole body once per slot (gigabytes for a large generated body).
        container, key, json_value = slots[draw(st.integers(0, len(slots) - 1))]
        container[key] = draw(st.sampled_from(HOSTILE_JSON if json_value else HOSTILE_TEXT))


@dataclass
class Target:
    """A service app to fuzz; `headers` gives the credentials for an operation's path, and `steer`
    may point a generated case at seeded data (a known client...) so it gets past lookups."""

    app: FastAPI
    headers: Callable[[str], dict[str, str]]
    steer: Callable[[Case, Draw], None] = field(default=_no_steering)


@contextmanager
def _running(app: FastAPI) -> Iterator[Callable[[Case, dict[str, str]], httpx.Response]]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app_client(app, BASE_URL)) as http,
    ):

        def send(case: Case, headers: dict[str, str]) -> httpx.Response:
            kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
            if "json" in kwargs:
                kwargs["data"] = _json_bytes(kwargs.pop("json"))
            prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in _REQUEST_ARGS}).prepare()
            body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
            assert prepared.method is not None
            assert prepared.url is not None
            request = partial(
                http.request, prepared.method, prepared.url, headers=dict(prepared.headers), content=body
            )
            return portal.call(request)

        yield send


def fuzz(target: Target, *, examples: int = EXAMPLES) -> Counter[tuple[str, str, int]]:
    """Runs every operation in both modes; returns how many answers each (method, path, status) got,
    so a test can check the run got past authentication and lookups."""
    schema = schemathesis.openapi.from_dict(target.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    seen: Counter[tuple[str, str, int]] = Counter()
    with _running(target.app) as send:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
                def check(case: Case, data: st.DataObject) -> None:
                    target.steer(case, data.draw)
                    _inject_hostile(case, data.draw)
                    note(case.as_curl_command())  # shown for the failing example
                    response = send(case, target.headers(case.path))
                    seen[case.method, case.path, response.status_code] += 1
                    case.validate_response(response, checks=CHECKS)

                try:
                    check()
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing to break: no parameter, no body
    return seen
