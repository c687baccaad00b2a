"""sync's use cases on the in-memory unit of work."""

from __future__ import annotations

from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_schemas import ClinicRegistered
from petportal_sync.domain.apikeys import hash_api_key, looks_like_api_key
from petportal_sync.domain.clinics import Clinic, ClinicExistsError, InvalidApiKey
from petportal_sync.service_layer import services

pytestmark = pytest.mark.unit

CONTACT = {
    "kind": "contact",
    "client_id": "c1",
    "first_name": "Ann",
    "last_name": "Lee",
    "phone": "4155550123",
}
PATIENT = {"kind": "patient", "client_id": "c1", "patient_id": "p1", "name": "Rex", "species": "Canine"}
PROGRAM = {
    "kind": "program",
    "program_code": "cp",
    "name": "Care plan",
    "call_to_action": "Join",
    "offered": True,
}
ENROLMENT = {"kind": "enrolment", "client_id": "c1", "program_code": "cp"}


async def register(uow: FakeUnitOfWork[Any], clinic_id: str = "clinic-1") -> str:
    return await services.register_clinic(
        uow, clinic_id=clinic_id, name="Happy Paws", pims="ezyvet", sms_number="+14155550100", timezone="UTC"
    )


async def receive(uow: FakeUnitOfWork[Any], *records: dict[str, Any]) -> services.BatchResult:
    return await services.receive_records(uow, "clinic-1", list(records), phone_region="US", pims="ezyvet")


async def test_a_registered_clinic_keeps_only_the_key_hash_and_is_published(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    api_key = await register(uow)
    assert looks_like_api_key(api_key)
    stored = repositories.sync.clinics["clinic-1"]
    assert stored.api_key_hash == hash_api_key(api_key) != api_key
    [envelope] = uow.published
    event = envelope.event()
    assert isinstance(event, ClinicRegistered)
    assert (envelope.clinic_id, envelope.client_id, envelope.producer) == ("clinic-1", None, "sync")
    assert (event.name, event.pims, event.sms_number, event.timezone) == (
        "Happy Paws",
        "ezyvet",
        "+14155550100",
        "UTC",
    )


async def test_a_clinic_id_is_registered_only_once(uow: FakeUnitOfWork[Any]) -> None:
    await register(uow)
    with pytest.raises(ClinicExistsError, match="clinic clinic-1 already exists"):
        await register(uow)
    assert uow.published_types() == ["ClinicRegistered"]
    assert uow.rollbacks == 1


async def test_a_connector_is_authenticated_by_its_clinics_api_key_only(uow: FakeUnitOfWork[Any]) -> None:
    api_key = await register(uow)
    assert await services.authenticate_clinic(uow, api_key) == Clinic("clinic-1", "Happy Paws", "ezyvet")
    for wrong in (None, "", "not a key", api_key[:-1] + ("A" if api_key[-1] != "A" else "B")):
        with pytest.raises(InvalidApiKey, match="a valid clinic API key is required"):
            await services.authenticate_clinic(uow, wrong)


async def test_valid_records_are_applied_with_their_events_and_the_rest_are_kept(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    bad = {"kind": "contact", "client_id": "c2", "first_name": "", "last_name": "Lee"}
    orphan = {**PATIENT, "client_id": "nobody", "patient_id": "p2"}
    result = await receive(uow, CONTACT, bad, PATIENT, PROGRAM, ENROLMENT, orphan)

    assert result.accepted == 4
    assert [r.index for r in result.rejected] == [1, 5]
    assert repositories.sync.contacts[("clinic-1", "c1")]["phone"] == "+14155550123"
    assert set(repositories.sync.patients) == {("clinic-1", "p1")}
    assert repositories.sync.enrolments == {("clinic-1", "c1", "cp")}
    assert sorted(uow.published_types()) == [
        "ClientEnrolledInProgram",
        "ClientUpserted",
        "PatientUpserted",
        "ProgramOffered",
    ]
    assert repositories.sync.locked == ["clinic-1"]
    assert [r.index for r in await services.clinic_rejections(uow, "clinic-1", 100)] == [1, 5]


async def test_resending_the_same_records_publishes_nothing(uow: FakeUnitOfWork[Any]) -> None:
    await receive(uow, CONTACT, PATIENT)
    published = len(uow.published)
    again = await receive(uow, CONTACT, PATIENT)
    assert (again.accepted, again.rejected) == (2, [])
    assert len(uow.published) == published == 2


async def test_a_clinic_sees_only_its_own_rejections_newest_first_up_to_the_limit(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await receive(uow, {"kind": "nothing"}, {"kind": "nothing"})
    await services.receive_records(uow, "clinic-2", [{"kind": "other"}], phone_region="US", pims="ezyvet")
    rejections = await services.clinic_rejections(uow, "clinic-1", 1)
    assert [(r.index, r.kind) for r in rejections] == [(0, "nothing")]
    assert len(await services.clinic_rejections(uow, "clinic-1", 100)) == 2


async def test_a_batch_longer_than_a_slice_keeps_its_indexes_and_order(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    """Validated and planned a slice at a time (`services.SLICE`), then applied as one batch."""
    contacts = [{**CONTACT, "client_id": f"c{i}"} for i in range(services.SLICE * 2 + 50)]
    bad = {
        i: {"kind": "contact", "client_id": f"x{i}", "first_name": "", "last_name": "Lee"}
        for i in (3, 120, 230)
    }
    records = [bad.get(i, contact) for i, contact in enumerate(contacts)]
    records.append({**PATIENT, "client_id": "c10"})  # its contact came in an earlier slice
    result = await receive(uow, *records)
    assert [r.index for r in result.rejected] == sorted(bad)
    assert result.accepted == len(records) - len(bad)
    assert len(repositories.sync.contacts) == len(contacts) - len(bad)
    assert ("clinic-1", "p1") in repositories.sync.patients
