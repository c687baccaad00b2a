"""A pet's signalment (what the clinic records about the animal) and its age."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class Age:
    years: int
    months: int

    @property
    def text(self) -> str:
        """ "2 years 3 months", "1 year", "5 months", "less than a month"."""
        parts = [
            f"{n} {unit}{'' if n == 1 else 's'}"
            for n, unit in ((self.years, "year"), (self.months, "month"))
            if n
        ]
        return " ".join(parts) or "less than a month"


def age_on(date_of_birth: date | None, today: date) -> Age | None:
    """Completed years and months on `today`; None when unknown or the birth date is in the future."""
    if date_of_birth is None or date_of_birth > today:
        return None
    months = (today.year - date_of_birth.year) * 12 + today.month - date_of_birth.month
    # The current month is not complete yet, unless today is the last day of a month shorter than
    # the birth day (born on 31 January: one month old on 28 February).
    if today.day < date_of_birth.day and (today + timedelta(days=1)).month == today.month:
        months -= 1
    return Age(months // 12, months % 12)


@dataclass(frozen=True)
class Pet:
    clinic_id: str
    client_id: str
    patient_id: str
    name: str
    species: str
    breed: str | None = None
    sex: str | None = None
    date_of_birth: date | None = None
    colour: str | None = None
    weight_kg: float | None = None
    microchip: str | None = None
    # occurred_at of the PatientUpserted that wrote this record: an older event never overwrites it.
    updated_at: datetime | None = None
    clinic_name: str | None = None  # filled in when listed, from the clinic's registration
    has_photo: bool = False  # filled in when listed

    def age(self, today: date) -> Age | None:
        return age_on(self.date_of_birth, today)
