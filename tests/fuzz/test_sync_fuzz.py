import argparse
import io
import json
from contextlib import redirect_stdout

import pytest

import petportal_sync
from petportal_devkit.testing import DatabaseFactory, run_sync
from petportal_sync.bootstrap import bootstrap
from petportal_sync.entrypoints.app import create_app
from petportal_sync.entrypoints.cli import create_clinic
from petportal_sync.settings import SyncSettings

from .conftest import CLINIC, SERVICE_THREADS_USE_RANDOM, Target, fuzz, migrated_database, service_settings

pytestmark = [pytest.mark.integration, SERVICE_THREADS_USE_RANDOM]


def test_sync_api_never_fails_on_generated_requests(
    make_database: DatabaseFactory, kafka_bootstrap: str
) -> None:
    url = migrated_database(make_database, petportal_sync)
    settings = SyncSettings(**service_settings(kafka_bootstrap, database_url=url))
    args = argparse.Namespace(
        clinic_id=CLINIC, name="Fuzz Vets", pims="ezyvet", sms_number="+14155550100", timezone="UTC"
    )
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert run_sync(create_clinic(args, settings)) == 0
    auth = {"Authorization": f"Bearer {json.loads(printed.getvalue())['api_key']}"}
    seen = fuzz(Target(create_app(bootstrap(settings)), headers=lambda _path: auth))
    assert seen[("POST", "/pims/v1/records", 200)] > 0
