"""Phone numbers in E.164, as the SMS provider and the PIMS may write them differently."""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumber(ValueError):
    pass


def to_e164(raw: str, default_region: str = "US") -> str:
    """The number in E.164 (+15551234567); raises InvalidPhoneNumber when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber("not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhoneNumber("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
