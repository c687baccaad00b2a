import pytest
from schemathesis import Case

import petportal_messaging
from petportal_devkit.testing import DatabaseFactory
from petportal_messaging.bootstrap import bootstrap
from petportal_messaging.entrypoints.app import create_app
from petportal_messaging.settings import MessagingSettings

from .conftest import (
    CLIENT,
    CLINIC,
    SERVICE_THREADS_USE_RANDOM,
    Draw,
    Keys,
    Target,
    fuzz,
    migrated_database,
    service_settings,
    sometimes,
)

pytestmark = [pytest.mark.integration, SERVICE_THREADS_USE_RANDOM]


def at_the_known_client(case: Case, draw: Draw) -> None:
    if case.path_parameters and "client_id" in case.path_parameters and sometimes(draw):
        case.path_parameters["client_id"] = CLIENT


def test_messaging_api_never_fails_on_generated_requests(
    make_database: DatabaseFactory, kafka_bootstrap: str
) -> None:
    seed = f"INSERT INTO clients (clinic_id, client_id) VALUES ('{CLINIC}', '{CLIENT}')"
    url = migrated_database(make_database, petportal_messaging, seed)
    keys = Keys()
    runtime = bootstrap(
        MessagingSettings(**service_settings(kafka_bootstrap, database_url=url)), token_verifier=keys.verifier
    )
    seen = fuzz(Target(create_app(runtime), headers=keys.by_path, steer=at_the_known_client))
    assert seen[("POST", "/clinic/v1/clients/{client_id}/messages", 201)] > 0
    assert seen[("POST", "/api/v1/conversation/messages", 201)] > 0
    assert seen[("GET", "/clinic/v1/conversations", 200)] > 0
