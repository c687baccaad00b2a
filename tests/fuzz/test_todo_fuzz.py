import uuid

import pytest

from petportal_todo.bootstrap import bootstrap
from petportal_todo.entrypoints.app import create_app
from petportal_todo.settings import TodoSettings

from .conftest import SERVICE_THREADS_USE_RANDOM, Keys, Target, fuzz, service_settings

pytestmark = [pytest.mark.integration, SERVICE_THREADS_USE_RANDOM]


def test_todo_api_never_fails_on_generated_requests(kafka_bootstrap: str, mongo_url: str) -> None:
    settings = TodoSettings(
        **service_settings(
            kafka_bootstrap, mongodb_url=mongo_url, mongodb_database=f"todo_{uuid.uuid4().hex[:10]}"
        )
    )
    keys = Keys()
    service = bootstrap(settings, token_verifier=keys.verifier, consumer=f"todo-fuzz-{uuid.uuid4().hex[:8]}")
    seen = fuzz(Target(create_app(service), headers=keys.by_path))
    assert seen[("GET", "/api/v1/todo", 200)] > 0
