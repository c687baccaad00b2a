"""What notify's use cases need of storage: clinics, contacts, consents and inbound texts, in a unit
of work (with the outbox and the inbox)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from petportal_runtime.uow import UnitOfWork

from ..domain.clinics import Clinic
from ..domain.consent import Consent
from ..domain.delivery import ClinicProfile, Contact, Delivery, Finish, Status, Template
from ..domain.sms import InboundText
from ..domain.stops import SmsStop


class NotifyStore(Protocol):
    async def upsert_clinic(self, clinic: Clinic) -> None:
        """Insert or replace the clinic; `SmsNumberTaken` if another clinic holds its number."""
        ...

    async def clinic_by_number(self, sms_number: str) -> Clinic | None: ...

    async def clinic(self, clinic_id: str) -> Clinic | None: ...

    async def update_clinic_profile(
        self, clinic_id: str, *, help_text: str | None, phone: str | None
    ) -> None: ...

    async def upsert_contact(
        self, clinic_id: str, client_id: str, phone: str | None, email: str | None = None
    ) -> None: ...

    async def upsert_patient(
        self, clinic_id: str, patient_id: str, name: str, *, client_id: str | None
    ) -> None:
        """Insert or replace the pet's name and whose pet it is."""
        ...

    async def contact_exists(self, clinic_id: str, client_id: str) -> bool: ...

    async def clients_with_phone(self, clinic_id: str, phone: str) -> list[str]:
        """The clinic's clients with this phone, by client id."""
        ...

    async def ensure_consent(self, consent: Consent) -> bool:
        """Create the consent record with these values if the client has none yet; True if created."""
        ...

    async def consent(self, clinic_id: str, client_id: str, *, lock: bool = False) -> Consent | None:
        """The client's consent record (`lock`: locked for the unit of work, as a keyword's change
        locks it), None if there is none."""
        ...

    async def contact_phone(self, clinic_id: str, client_id: str) -> str | None: ...

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

    async def keep_sms_stop(self, stop: SmsStop) -> None:
        """Keep the number as stopped at the clinic (the earliest opt-out if it is already kept)."""
        ...

    async def sms_stopped(self, clinic_id: str, phone_digest: str) -> bool: ...

    async def forget_sms_stop(self, clinic_id: str, phone_digest: str) -> bool:
        """The number opted back in: it is no longer kept as stopped; True if it was."""
        ...

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete everything held about the client at the clinic (contact, pets, deliveries, consent,
        the clinic's texts from their phone); how many rows."""
        ...


@dataclass(frozen=True)
class Claimed:
    """A due delivery as the dispatcher claimed it: with where and whether the client may be reached
    (None: not a contact of the clinic), the clinic, and the pet's name for reminders."""

    delivery: Delivery
    contact: Contact | None
    clinic: ClinicProfile | None
    pet_name: str | None = None


class DeliveryStore(Protocol):
    async def contact(self, clinic_id: str, client_id: str) -> Contact | None: ...

    async def add(self, delivery: Delivery) -> Delivery:
        """Insert unless a delivery has its key; the stored one either way."""
        ...

    async def add_to_batch(self, delivery: Delivery) -> None:
        """Queue a new-messages notification, or count one more message in the open one."""
        ...

    async def cancel(
        self,
        clinic_id: str,
        *,
        subject: tuple[str, str] | None = None,
        client_id: str | None = None,
        template: Template | None = None,
        keep: Iterable[str] = (),
        reason: str,
    ) -> int: ...

    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        """Due queued deliveries, locked for this unit of work, with their client's consent locked
        against a concurrent change."""
        ...

    async def mark_sending(self, ids: Sequence[int], lease_until: datetime) -> None: ...

    async def finish_all(self, finishes: Sequence[Finish]) -> None:
        """Record how each delivery ended (or when it goes again), in one round trip."""
        ...

    async def existing(self, ids: Sequence[int]) -> set[int]:
        """Which of these deliveries are still stored (an erasure deletes the client's)."""
        ...

    async def expire_leases(self, now: datetime) -> list[Delivery]: ...

    async def provider_status(self, provider_id: str, status: Status, reason: str | None) -> bool: ...

    async def list(
        self, clinic_id: str, *, status: Status | None, client_id: str | None, limit: int
    ) -> list[Delivery]: ...


class NotifyRepositories(Protocol):
    @property
    def notify(self) -> NotifyStore: ...

    @property
    def deliveries(self) -> DeliveryStore: ...


NotifyUnitOfWork = UnitOfWork[NotifyRepositories]
