import argparse
import io
import uuid
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from schemathesis import Case

import petportal_identity
from petportal_devkit.testing import DatabaseFactory, run_sync
from petportal_identity.bootstrap import bootstrap
from petportal_identity.entrypoints.app import create_app
from petportal_identity.entrypoints.cli import create_staff
from petportal_identity.settings import IdentitySettings

from .conftest import (
    CLIENT,
    CLINIC,
    SERVICE_THREADS_USE_RANDOM,
    Draw,
    Target,
    fuzz,
    migrated_database,
    service_settings,
    sometimes,
)

pytestmark = [pytest.mark.integration, SERVICE_THREADS_USE_RANDOM]

STAFF_EMAIL = "vet@fuzz.example"


def at_known_people(case: Case, draw: Draw) -> None:
    if not isinstance(case.body, dict) or not sometimes(draw):
        return
    if case.path.endswith("/dev-token"):
        case.body.update(clinic_id=CLINIC, client_id=CLIENT)
    elif case.path.endswith("/auth/token"):
        case.body["email"] = STAFF_EMAIL


def test_identity_api_never_fails_on_generated_requests(
    make_database: DatabaseFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    contact = (
        "INSERT INTO contacts (clinic_id, client_id, first_name, last_name, source_occurred_at) "
        f"VALUES ('{CLINIC}', '{CLIENT}', 'Ann', 'Lee', now())"
    )
    url = migrated_database(make_database, petportal_identity, contact)
    settings = IdentitySettings(
        **service_settings(kafka_bootstrap, database_url=url),
        dev_token_endpoint_enabled=True,
        dev_key_dir=tmp_path / "keys",
    )
    staff = argparse.Namespace(clinic_id=CLINIC, email=STAFF_EMAIL, password="a long fuzzing password")
    with redirect_stdout(io.StringIO()):
        assert run_sync(create_staff(staff, settings)) == 0
    app = create_app(bootstrap(settings))
    token = app.state.container.tokens.parent(uuid.uuid4(), CLINIC, CLIENT).access_token
    parent = {"Authorization": f"Bearer {token}"}
    seen = fuzz(
        Target(app, headers=lambda path: parent if path == "/api/v1/account" else {}, steer=at_known_people)
    )
    assert seen[("POST", "/api/v1/auth/dev-token", 200)] > 0
