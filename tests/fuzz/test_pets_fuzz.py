import pytest
from schemathesis import Case

import petportal_pets
from petportal_devkit.testing import DatabaseFactory
from petportal_pets.bootstrap import bootstrap
from petportal_pets.entrypoints.app import create_app
from petportal_pets.settings import PetsSettings

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


def at_the_known_pet(case: Case, draw: Draw) -> None:
    if case.path_parameters and "patient_id" in case.path_parameters and sometimes(draw):
        case.path_parameters["patient_id"] = "p1"


def test_pets_api_never_fails_on_generated_requests(
    make_database: DatabaseFactory, kafka_bootstrap: str
) -> None:
    pet = (
        "INSERT INTO pets (clinic_id, client_id, patient_id, name, species, date_of_birth, weight_kg, "
        f"updated_at) VALUES ('{CLINIC}', '{CLIENT}', 'p1', 'Rex', 'Canine', '2019-04-01', 12.5, now())"
    )
    url = migrated_database(make_database, petportal_pets, pet)
    keys = Keys()
    service = bootstrap(
        PetsSettings(**service_settings(kafka_bootstrap, database_url=url)), token_verifier=keys.verifier
    )
    seen = fuzz(Target(create_app(service), headers=keys.by_path, steer=at_the_known_pet))
    assert seen[("GET", "/api/v1/pets/{patient_id}", 200)] > 0
