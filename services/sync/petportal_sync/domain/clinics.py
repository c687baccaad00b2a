"""A clinic as sync knows it: who it is, and the hash of the API key its PIMS connector signs in with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Clinic:
    clinic_id: str
    name: str
    pims: str


@dataclass(frozen=True)
class ClinicRegistration:
    """A new clinic; only the hash of its API key is kept."""

    clinic_id: str
    name: str
    pims: str
    sms_number: str | None
    timezone: str
    api_key_hash: str


class ClinicExistsError(Exception):
    def __init__(self, clinic_id: str) -> None:
        super().__init__(f"clinic {clinic_id} already exists")


class InvalidApiKey(Exception):
    """No clinic has this API key (or none was sent)."""

    def __init__(self) -> None:
        super().__init__("a valid clinic API key is required")
