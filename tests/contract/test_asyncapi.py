"""Each service's AsyncAPI document (what it consumes and publishes) matches the committed snapshot.

Regenerate after an intended change: UPDATE_SNAPSHOTS=1 pytest tests/contract/test_asyncapi.py
rewrites the snapshots that differ and still fails for each of them, so a changed document never
passes unseen; review the diff, commit it, and the next run passes.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from faststream.specification import AsyncAPI

from petportal_runtime.catalog import service as catalog_entry
from petportal_runtime.service import ServiceRuntime

from .conftest import assert_matches_snapshot, render

pytestmark = pytest.mark.contract

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots" / "asyncapi"


def asyncapi_document(service: str, runtime: ServiceRuntime) -> dict[str, Any]:
    spec = AsyncAPI(runtime.broker, title=f"petportal-{service}", version=version(f"petportal-{service}"))
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    return document


def test_asyncapi_document_matches_the_snapshot(service: str, built: Callable[[str], ServiceRuntime]) -> None:
    document = asyncapi_document(service, built(service))
    assert_matches_snapshot(SNAPSHOTS / f"{service}.json", document, f"{service}'s AsyncAPI", __file__)


def test_the_document_is_stable_between_builds(service: str, built: Callable[[str], ServiceRuntime]) -> None:
    """Two builds give the same document, so a snapshot diff always means a real change."""
    assert render(asyncapi_document(service, built(service))) == render(
        asyncapi_document(service, built(service))
    )


def test_what_a_consumer_receives_is_named_the_envelope(
    service: str, built: Callable[[str], ServiceRuntime]
) -> None:
    """Each receive operation's payload is the Envelope (a batch consumer's, a list of them)."""
    document = asyncapi_document(service, built(service))
    received = [
        _resolve(document, _resolve(document, ref["$ref"])["payload"]["$ref"])
        for operation in document["operations"].values()
        if operation["action"] == "receive"
        for ref in operation["messages"]
    ]
    assert bool(received) == catalog_entry(service).consumes, f"{service} receive operations: {received}"
    for payload in received:
        envelope = _resolve(document, payload["items"]["$ref"]) if payload.get("type") == "array" else payload
        assert envelope["title"] == "Envelope", f"{service} consumes {payload}"


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict), ref
    if "$ref" in node and len(node) == 1:
        return _resolve(document, node["$ref"])
    return node
