import pytest
from schemathesis import Case

import petportal_notify
from petportal_devkit.testing import DatabaseFactory
from petportal_notify.bootstrap import bootstrap
from petportal_notify.entrypoints.app import create_app
from petportal_notify.settings import NotifySettings

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

CLINIC_NUMBER, CLIENT_PHONE = "+14155550100", "+14155552671"


def at_the_known_clinic_and_client(case: Case, draw: Draw) -> None:
    if case.path_parameters and "client_id" in case.path_parameters and sometimes(draw):
        case.path_parameters["client_id"] = CLIENT
    if case.path.endswith("/inbound") and isinstance(case.body, dict) and sometimes(draw):
        case.body.update(To=CLINIC_NUMBER, From=CLIENT_PHONE)


def test_notify_api_never_fails_on_generated_requests(
    make_database: DatabaseFactory, kafka_bootstrap: str
) -> None:
    url = migrated_database(
        make_database,
        petportal_notify,
        "INSERT INTO clinics (clinic_id, name, sms_number) "
        f"VALUES ('{CLINIC}', 'Fuzz Vets', '{CLINIC_NUMBER}')",
        "INSERT INTO contacts (clinic_id, client_id, phone) "
        f"VALUES ('{CLINIC}', '{CLIENT}', '{CLIENT_PHONE}')",
    )
    keys = Keys()
    notify = bootstrap(
        NotifySettings(**service_settings(kafka_bootstrap, database_url=url)), token_verifier=keys.verifier
    )
    seen = fuzz(Target(create_app(notify), headers=keys.by_path, steer=at_the_known_clinic_and_client))
    assert seen[("POST", "/webhooks/sms/inbound", 200)] > 0
