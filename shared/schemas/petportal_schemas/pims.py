"""What each supported PIMS can do: the one capability matrix every service reads.

A clinic's PIMS is in `ClinicRegistered.pims`. A service that needs a capability the clinic's PIMS
lacks answers with a clear error (`CapabilityMissing` → 409 in the services), never an empty page.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

PimsName = Literal["cornerstone", "avimark", "impromed", "ezyvet", "pulse", "other"]


class Capability(StrEnum):
    ID_CARD = "id_card"  # signalment and current vaccines as a card (JSON and PDF)
    REMINDERS = "reminders"  # service reminders (services due) shown and sent
    DIRECT_BOOKING = "direct_booking"  # free slots pushed, bookings written back to the calendar
    APPOINTMENTS = "appointments"
    VACCINATIONS = "vaccinations"
    MEDICATIONS = "medications"


_COMMON: Final = frozenset({Capability.APPOINTMENTS, Capability.VACCINATIONS, Capability.MEDICATIONS})

# Cornerstone means Cornerstone on-premise; the cloud edition is connected as "other" until it is
# verified. Direct booking needs a PIMS with an API to write appointments: ezyVet and Pulse have one.
CAPABILITIES: Final[dict[PimsName, frozenset[Capability]]] = {
    "cornerstone": _COMMON | {Capability.ID_CARD, Capability.REMINDERS},
    "avimark": _COMMON | {Capability.ID_CARD, Capability.REMINDERS},
    "impromed": _COMMON | {Capability.ID_CARD, Capability.REMINDERS},
    "ezyvet": _COMMON | {Capability.ID_CARD, Capability.DIRECT_BOOKING},
    "pulse": _COMMON | {Capability.ID_CARD, Capability.REMINDERS, Capability.DIRECT_BOOKING},
    "other": _COMMON,
}


def supports(pims: str, capability: Capability) -> bool:
    """Whether the named PIMS has the capability (an unknown name has none of the optional ones)."""
    return capability in CAPABILITIES.get(pims, _COMMON)  # type: ignore[call-overload]


class CapabilityMissing(Exception):
    """The clinic's PIMS does not provide what the request needs."""

    def __init__(self, pims: str, capability: Capability) -> None:
        super().__init__(f"the clinic's practice-management system ({pims}) does not provide {capability}")
        self.pims = pims
        self.capability = capability
