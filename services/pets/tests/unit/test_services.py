"""pets' use cases on the in-memory unit of work."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_pets.domain import Pet
from petportal_pets.service_layer import services
from petportal_runtime.auth import ClientRef
from petportal_schemas import Envelope, PatientUpserted

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def ref(clinic_id: str, client_id: str) -> ClientRef:
    return ClientRef(clinic_id=clinic_id, client_id=client_id)


def _upserted(
    name: str, *, at: datetime = AT, client_id: str | None = "C-1"
) -> tuple[Envelope, PatientUpserted]:
    event = PatientUpserted(patient_id="pat-1", name=name, species="canine", date_of_birth=date(2020, 1, 2))
    return Envelope.wrap(
        event, clinic_id="clinic-1", client_id=client_id, producer="sync", occurred_at=at
    ), event


async def test_a_patient_upserted_is_stored_once_even_when_redelivered(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    envelope, event = _upserted("Rex")
    assert await services.record_patient(uow, envelope, event)
    assert not await services.record_patient(uow, envelope, event)
    assert repositories.pets.stored[("clinic-1", "pat-1")].name == "Rex"
    assert uow.claimed == {("pets", envelope.event_id)}
    assert uow.commits == 2


async def test_an_older_patient_record_does_not_overwrite_a_newer_one(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await services.record_patient(uow, *_upserted("Rex"))
    older = _upserted("Old name", at=AT - timedelta(days=1))
    assert not await services.record_patient(uow, *older)
    assert repositories.pets.stored[("clinic-1", "pat-1")].name == "Rex"
    assert ("pets", older[0].event_id) in uow.claimed


async def test_a_parents_pets_are_listed_by_name(uow: FakeUnitOfWork[Any], repositories: Any) -> None:
    for patient_id, name, client_id in (("p-2", "Zoe", "C-1"), ("p-1", "Ada", "C-1"), ("p-3", "Max", "C-2")):
        repositories.pets.stored[("clinic-1", patient_id)] = Pet(
            "clinic-1", client_id, patient_id, name, "feline"
        )
    pets = await services.parent_pets(uow, [ref("clinic-1", "C-1")])
    assert [p.name for p in pets] == ["Ada", "Zoe"]


async def test_another_parents_pet_is_not_found_like_a_missing_one(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    repositories.pets.stored[("clinic-1", "p-1")] = Pet("clinic-1", "C-2", "p-1", "Ada", "feline")
    with pytest.raises(services.PetNotFound, match="no pet p-1"):
        await services.parent_pet(uow, [ref("clinic-1", "C-1")], "p-1")
    with pytest.raises(services.PetNotFound, match="no pet p-9"):
        await services.parent_pet(uow, [ref("clinic-1", "C-1")], "p-9")
    assert (await services.parent_pet(uow, [ref("clinic-1", "C-2")], "p-1"))[0].name == "Ada"
