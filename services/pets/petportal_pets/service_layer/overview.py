"""The parent's pets and all their upcoming appointments in one read: the home screen's part.

It answers exactly what `parent_pets` and `parent_appointments` answer together, from one snapshot
of the store read in one go (`OverviewReader`), without a unit of work: nothing is written, so
there is no transaction to commit and no outbox to wake.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from petportal_runtime.auth import ClientRef

from ..domain import Appointment, Clinic, Pet, PetRecord, upcoming_appointments

# (appointment, its pet with the clinic's name or None for no pet in particular, its clinic)
ShownAppointment = tuple[Appointment, Pet | None, Clinic]


@dataclass(frozen=True)
class OverviewRows:
    """What the store holds for a parent's overview.

    `pets`: the listed pets of the memberships by name (then clinic, patient id), `has_photo` set;
    `appointments`: the active appointment records of the clients that have a listed pet, for one of
    those pets or for none (under (clinic_id, "")), by (clinic_id, patient_id);
    `clinics`: every membership's clinic (a default Clinic for one not known yet).
    """

    pets: list[Pet]
    appointments: dict[tuple[str, str], list[PetRecord]]
    clinics: dict[str, Clinic]


class OverviewReader(Protocol):
    async def __call__(self, memberships: Collection[ClientRef]) -> OverviewRows: ...


@dataclass(frozen=True)
class Overview:
    pets: list[Pet]  # with their clinic's name
    appointments: list[ShownAppointment]  # soonest first


async def parent_overview(
    read: OverviewReader, memberships: Collection[ClientRef], now: datetime
) -> Overview:
    """The parent's pets (as `parent_pets`) and upcoming appointments (as `parent_appointments`)."""
    rows = await read(memberships)
    pets = [with_clinic(p, rows.clinics[p.clinic_id]) for p in rows.pets]
    return Overview(pets, shown_appointments(rows.pets, rows.appointments, rows.clinics, now))


def shown_appointments(
    pets: Sequence[Pet],
    records: Mapping[tuple[str, str], list[PetRecord]],
    clinics: Mapping[str, Clinic],
    now: datetime,
) -> list[ShownAppointment]:
    """Upcoming appointments of these pets (and of their clients for no pet in particular), each
    clinic's visibility rules applied, soonest first."""
    by_key = {(p.clinic_id, p.patient_id): p for p in pets}
    shown: list[ShownAppointment] = []
    for (clinic_id, patient_id), found in records.items():
        pet = by_key.get((clinic_id, patient_id))
        if patient_id and pet is None:
            continue
        clinic = clinics[clinic_id]
        shown += [
            (a, with_clinic(pet, clinic) if pet else None, clinic)
            for a in upcoming_appointments(found, clinic, now)
        ]
    return sorted(shown, key=lambda x: (x[0].appointment.starts_at, x[0].appointment.appointment_id))


def with_clinic(pet: Pet, clinic: Clinic) -> Pet:
    return replace(pet, clinic_name=clinic.name)
