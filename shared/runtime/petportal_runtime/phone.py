"""The one phone-number rule: what the portal takes for a phone number, and its E.164 form.

sync normalises the numbers PIMS records carry (and a clinic's SMS number) with it; notify normalises
the From and To of an inbound text with it, to match them against those stored numbers. One rule on
both sides means a number the portal stores is always one an inbound text can match, and a number
sync refuses is never looked up.

A number is accepted when `phonenumbers` finds it valid (a real numbering plan's number, not only of
a possible length), written in any common format; numbers without a country code are read in the
given region.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

DEFAULT_REGION = "US"
E164_PATTERN = r"^\+[1-9]\d{6,14}$"
MAX_LENGTH = 40  # longer text is refused before parsing


class InvalidPhoneNumber(ValueError):
    """Not a valid phone number; a ValueError, so a pydantic validator can raise it as it is."""


@functools.lru_cache(maxsize=65_536)  # connectors re-send the same numbers batch after batch
def normalise_phone(value: str, region: str = DEFAULT_REGION) -> str:
    """E.164 form (+14155552671) of `value`; raises InvalidPhoneNumber if it is not a valid number."""
    value = value.strip()
    if len(value) > MAX_LENGTH:
        raise InvalidPhoneNumber("phone number is too long")
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid phone number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not re.fullmatch(E164_PATTERN, e164):
        raise InvalidPhoneNumber("not a valid phone number")
    return e164
