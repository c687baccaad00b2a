from __future__ import annotations

from datetime import date

import pytest

from petportal_pets.domain import Age, Pet, age_on

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("born", "today", "expected"),
    [
        (date(2020, 3, 15), date(2026, 3, 15), Age(6, 0)),
        (date(2020, 3, 15), date(2026, 3, 14), Age(5, 11)),
        (date(2025, 12, 10), date(2026, 2, 9), Age(0, 1)),
        (date(2026, 2, 1), date(2026, 2, 20), Age(0, 0)),
        (date(2026, 1, 31), date(2026, 2, 28), Age(0, 1)),  # the month ends before its 31st
        (date(2026, 1, 31), date(2026, 2, 27), Age(0, 0)),
        (date(2024, 2, 29), date(2025, 2, 28), Age(1, 0)),  # leap-day birthday
        (date(2024, 2, 29), date(2025, 2, 27), Age(0, 11)),
    ],
)
def test_age_in_completed_years_and_months(born: date, today: date, expected: Age) -> None:
    assert age_on(born, today) == expected


def test_age_is_unknown_without_or_with_a_future_birth_date() -> None:
    assert age_on(None, date(2026, 1, 1)) is None
    assert age_on(date(2026, 1, 2), date(2026, 1, 1)) is None


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (Age(2, 3), "2 years 3 months"),
        (Age(1, 0), "1 year"),
        (Age(0, 1), "1 month"),
        (Age(0, 5), "5 months"),
        (Age(0, 0), "less than a month"),
    ],
)
def test_age_text(age: Age, text: str) -> None:
    assert age.text == text


def test_pet_age_uses_its_birth_date() -> None:
    pet = Pet("c", "cl", "p1", "Rex", "Canine", date_of_birth=date(2019, 6, 1))
    assert pet.age(date(2026, 7, 1)) == Age(7, 1)
