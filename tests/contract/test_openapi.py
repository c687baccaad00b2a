"""Each service's OpenAPI document (its HTTP contract) matches the committed snapshot.

The document is read from the service's FastAPI app, built by its own `create_app` without starting
it (no database, broker or upstream is reached). The gateway's tests check every upstream answer
they fake against these snapshots (`petportal_devkit.contracts`), so a snapshot is also what the
gateway may assume of the service.

Regenerate after an intended change: UPDATE_SNAPSHOTS=1 pytest tests/contract/test_openapi.py
rewrites the snapshots that differ and still fails for each of them, so a changed document never
passes unseen; review the diff, commit it, and the next run passes.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest

from petportal_devkit.contracts import OPENAPI_SNAPSHOTS
from petportal_runtime.catalog import SERVICES as CATALOG

from .conftest import assert_matches_snapshot, render, settings_class

pytestmark = pytest.mark.contract

# Every deployable serves HTTP, the gateway included.
HTTP_SERVICES = tuple(spec.name for spec in CATALOG)


def build_app(name: str, workdir: Path) -> Any:
    """The app as `create_app` builds it, from explicit settings (the environment cannot change the
    document). A `create_app` taking settings gets them; one taking what `bootstrap` built gets that."""
    settings = settings_class(name)(
        environment="test",
        database_url=f"postgresql+asyncpg://contract@127.0.0.1:1/petportal_{name}",
        kafka_bootstrap_servers="127.0.0.1:19092",
        identity_url="http://127.0.0.1:8081",
        mongodb_url="mongodb://127.0.0.1:27117",
        dev_key_dir=workdir / "keys",
        # identity's development-only token endpoint is part of what it can serve: documented too.
        dev_token_endpoint_enabled=True,
    )
    create_app = importlib.import_module(f"petportal_{name}.entrypoints.app").create_app
    first = next(iter(inspect.signature(create_app).parameters))
    if first == "settings":
        return create_app(settings)
    return create_app(importlib.import_module(f"petportal_{name}.bootstrap").bootstrap(settings))


def openapi_document(name: str, workdir: Path) -> dict[str, Any]:
    app = build_app(name, workdir)
    try:
        document: dict[str, Any] = app.openapi()
    finally:
        runtime = app.state.runtime
        if runtime.engine is not None:
            runtime.engine.sync_engine.dispose()
    return document


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_openapi_document_matches_the_snapshot(name: str, tmp_path: Path) -> None:
    document = openapi_document(name, tmp_path)
    assert_matches_snapshot(OPENAPI_SNAPSHOTS / f"{name}.json", document, f"{name}'s OpenAPI", __file__)


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_the_openapi_document_is_stable_between_builds(name: str, tmp_path: Path) -> None:
    """Two builds give the same document, so a snapshot diff always means a real change."""
    assert render(openapi_document(name, tmp_path / "a")) == render(openapi_document(name, tmp_path / "b"))


def test_every_service_has_a_snapshot_and_no_other_does() -> None:
    assert sorted(p.stem for p in OPENAPI_SNAPSHOTS.glob("*.json")) == sorted(HTTP_SERVICES)
