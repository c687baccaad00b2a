"""The one phone-number rule (petportal_runtime.phone), which sync and notify both use."""

from __future__ import annotations

import pytest

from petportal_runtime.phone import InvalidPhoneNumber, normalise_phone

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("415.555.2671", "US", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+1 415 555 2671", "US", "+14155552671"),
        ("  +1 415 555 2671 ", "US", "+14155552671"),  # as a provider's form field may carry it
        ("+1 415 555 2671 ext. 12", "US", "+14155552671"),  # the extension is not part of E.164
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+15005550006", "US", "+15005550006"),  # the SMS provider's test numbers are valid
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, region: str, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize(
    "raw",
    [
        # notify took these (a possible length was enough), sync refused them (not valid): both refuse
        "+1 555-010-0001",
        "(555) 010-0001",
        "+15551234567",
        "+1 999 999 9999",
        # sync refused text longer than 40 characters before parsing; notify parsed it
        "+1 415 555 2671" + " " * 10 + "0" * 30,
        # neither took these
        "",
        "hello",
        "12",
        "+1",
        "020 7946 0958",  # a London number read as a US one
    ],
)
def test_what_is_not_a_valid_number_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise_phone(raw)


def test_the_error_is_a_value_error_for_pydantic_validators() -> None:
    assert issubclass(InvalidPhoneNumber, ValueError)
