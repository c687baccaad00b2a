"""What notify's use cases need of storage: clinics, contacts, consents and inbound texts, in a unit
of work (with the outbox and the inbox)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from petportal_runtime.uow import UnitOfWork

from ..domain.clinics import Clinic
from ..domain.consent import Consent
from ..domain.sms import InboundText, SmsRecipient


class NotifyStore(Protocol):
    async def upsert_clinic(self, clinic: Clinic) -> None:
        """Insert or replace the clinic; `SmsNumberTaken` if another clinic holds its number."""
        ...

    async def clinic_by_number(self, sms_number: str) -> Clinic | None: ...

    async def upsert_contact(self, clinic_id: str, client_id: str, phone: str | None) -> None: ...

    async def contact_exists(self, clinic_id: str, client_id: str) -> bool: ...

    async def clients_with_phone(self, clinic_id: str, phone: str) -> list[str]:
        """The clinic's clients with this phone, by client id."""
        ...

    async def ensure_consent(self, consent: Consent) -> None:
        """Create the consent record with these values if the client has none yet."""
        ...

    async def consent(self, clinic_id: str, client_id: str) -> Consent | None: ...

    async def consents_for_update(self, clinic_id: str, client_ids: Sequence[str]) -> list[Consent]:
        """The clients' consent records (created with defaults where missing), locked for the unit of
        work, by client id."""
        ...

    async def save_consent(self, consent: Consent) -> None: ...

    async def log_inbound(
        self, *, clinic_id: str, from_number: str, body: str, keyword: str | None, matched_clients: int
    ) -> None: ...

    async def inbound_texts(self, clinic_id: str, *, unmatched_only: bool, limit: int) -> list[InboundText]:
        """The clinic's inbound texts, newest first (only those from unknown numbers if asked)."""
        ...

    async def recipient(self, clinic_id: str, client_id: str) -> SmsRecipient | None:
        """Who a text to the client goes to and from, with their consent; None for an unknown client."""
        ...


class NotifyRepositories(Protocol):
    @property
    def notify(self) -> NotifyStore: ...


NotifyUnitOfWork = UnitOfWork[NotifyRepositories]
