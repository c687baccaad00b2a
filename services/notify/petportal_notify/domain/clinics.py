"""A clinic as notify knows it: its name and the number its clients text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Clinic:
    clinic_id: str
    name: str
    sms_number: str | None
    timezone: str = "UTC"


class SmsNumberTaken(Exception):
    """The clinic's SMS number already belongs to another clinic (a number identifies one clinic)."""

    def __init__(self) -> None:
        super().__init__("the SMS number already belongs to another clinic")
