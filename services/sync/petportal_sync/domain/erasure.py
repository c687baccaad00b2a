"""What of sync's data belongs to a client being erased (docs/erasure.md): pure, no I/O.

The client's rows are found by their ids (contact, patients, enrolments, clinical records). The
quarantine (rejected records) has no client column: a rejected record is the client's when its raw
text (`records.record_text`, ASCII JSON) holds the client's id as a JSON string, or the contact's
email (in any letter case), or the contact's phone number written any way (its national digits among
the record's digits; with the country code for a short one). A record of another client sharing the
email or the phone goes too: the quarantine is a copy of what the PIMS holds, sent again anyway.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True)
class ClientTraces:
    """The texts that mark a rejected record as the client's."""

    client_id: str  # as a JSON string, quotes included: "c1"
    email: str | None = None  # lower case, as ASCII JSON writes it (non-ASCII as \\u escapes)
    phone_digits: str | None = None  # the national significant number: 4155550123

    def found_in(self, raw: str) -> bool:
        """Whether the raw text of a rejected record holds one of these (as the SQL query decides)."""
        if self.client_id in raw:
            return True
        if self.email is not None and self.email in raw.lower():
            return True
        return self.phone_digits is not None and self.phone_digits in digits(raw)


def client_traces(client_id: str, email: str | None = None, phone: str | None = None) -> ClientTraces:
    """The traces of a client, from their id and their stored contact's email and (E.164) phone."""
    return ClientTraces(
        client_id=_json_text(client_id),
        email=_json_text(email)[1:-1].lower() if email else None,
        phone_digits=national_digits(phone) if phone else None,
    )


# Fewer digits than this would match unrelated digits of a record (dates, microchips): a shorter
# national number is looked for with its country code.
MIN_PHONE_DIGITS = 7


def national_digits(phone: str) -> str | None:
    """The national significant number of a stored (E.164) phone, with the country code when it is
    short; None if it does not parse."""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    national = phonenumbers.national_significant_number(parsed)
    if len(national) < MIN_PHONE_DIGITS:
        national = f"{parsed.country_code}{national}"
    return national or None


def digits(text: str) -> str:
    """The decimal digits of `text`, in order (what `regexp_replace(text, '[^0-9]', '', 'g')` keeps)."""
    return re.sub(r"[^0-9]", "", text)


def _json_text(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)
