"""notify's repositories in memory, behind the devkit's fake unit of work."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_notify.domain.clinics import Clinic, SmsNumberTaken
from petportal_notify.domain.consent import Consent
from petportal_notify.domain.delivery import ClinicProfile, Contact, Delivery, Finish, Status, Template
from petportal_notify.domain.stops import SmsStop
from petportal_notify.service_layer.unit_of_work import Claimed


@dataclass(frozen=True)
class InboundText:
    clinic_id: str
    from_number: str
    body: str
    keyword: str | None
    matched_clients: int


@dataclass
class InMemoryNotify:
    clinics: dict[str, Clinic] = field(default_factory=dict)
    phones: dict[tuple[str, str], str | None] = field(default_factory=dict)
    consents: dict[tuple[str, str], Consent] = field(default_factory=dict)
    inbound: list[InboundText] = field(default_factory=list)
    emails: dict[tuple[str, str], str | None] = field(default_factory=dict)
    pets: dict[tuple[str, str], str] = field(default_factory=dict)
    pet_owners: dict[tuple[str, str], str | None] = field(default_factory=dict)
    profiles: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    stops: dict[tuple[str, str], SmsStop] = field(default_factory=dict)  # (clinic, phone digest)
    # The deliveries table (set by InMemoryRepositories): erasing a client deletes theirs.
    deliveries: dict[str, Delivery] = field(default_factory=dict)

    async def upsert_clinic(self, clinic: Clinic) -> None:
        # The unique index on sms_number.
        if any(
            c.sms_number == clinic.sms_number and c.clinic_id != clinic.clinic_id
            for c in self.clinics.values()
            if c.sms_number is not None
        ):
            raise SmsNumberTaken()
        self.clinics[clinic.clinic_id] = clinic

    async def clinic_by_number(self, sms_number: str) -> Clinic | None:
        return next((c for c in self.clinics.values() if c.sms_number == sms_number), None)

    async def clinic(self, clinic_id: str) -> Clinic | None:
        return self.clinics.get(clinic_id)

    async def update_clinic_profile(
        self, clinic_id: str, *, help_text: str | None, phone: str | None
    ) -> None:
        self.profiles[clinic_id] = (help_text, phone)

    async def upsert_contact(
        self, clinic_id: str, client_id: str, phone: str | None, email: str | None = None
    ) -> None:
        self.phones[(clinic_id, client_id)] = phone
        self.emails[(clinic_id, client_id)] = email

    async def upsert_patient(
        self, clinic_id: str, patient_id: str, name: str, *, client_id: str | None
    ) -> None:
        self.pets[(clinic_id, patient_id)] = name
        self.pet_owners[(clinic_id, patient_id)] = client_id

    async def contact_exists(self, clinic_id: str, client_id: str) -> bool:
        return (clinic_id, client_id) in self.phones

    async def clients_with_phone(self, clinic_id: str, phone: str) -> list[str]:
        return sorted(k for (c, k), p in self.phones.items() if c == clinic_id and p == phone)

    async def ensure_consent(self, consent: Consent) -> bool:
        key = (consent.clinic_id, consent.client_id)
        if key in self.consents:
            return False
        self.consents[key] = replace(consent)
        return True

    async def consent(self, clinic_id: str, client_id: str, *, lock: bool = False) -> Consent | None:
        stored = self.consents.get((clinic_id, client_id))
        return replace(stored) if stored else None

    async def contact_phone(self, clinic_id: str, client_id: str) -> str | None:
        return self.phones.get((clinic_id, client_id))

    async def consents_for_update(self, clinic_id: str, client_ids: Sequence[str]) -> list[Consent]:
        for client_id in client_ids:
            await self.ensure_consent(Consent(clinic_id=clinic_id, client_id=client_id))
        return [replace(self.consents[(clinic_id, k)]) for k in sorted(client_ids)]

    async def save_consent(self, consent: Consent) -> None:
        self.consents[(consent.clinic_id, consent.client_id)] = replace(consent)

    async def log_inbound(
        self, *, clinic_id: str, from_number: str, body: str, keyword: str | None, matched_clients: int
    ) -> None:
        self.inbound.append(InboundText(clinic_id, from_number, body, keyword, matched_clients))

    async def keep_sms_stop(self, stop: SmsStop) -> None:
        kept = self.stops.get((stop.clinic_id, stop.phone_digest))
        if kept is None or stop.opted_out_at < kept.opted_out_at:
            self.stops[(stop.clinic_id, stop.phone_digest)] = stop

    async def sms_stopped(self, clinic_id: str, phone_digest: str) -> bool:
        return (clinic_id, phone_digest) in self.stops

    async def forget_sms_stop(self, clinic_id: str, phone_digest: str) -> bool:
        return self.stops.pop((clinic_id, phone_digest), None) is not None

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        who = (clinic_id, client_id)
        own = [key for key, d in self.deliveries.items() if (d.clinic_id, d.client_id) == who]
        own_pets = {self.deliveries[key].patient_id for key in own}
        pets = [
            pet
            for pet in self.pets
            if pet[0] == clinic_id
            and (
                self.pet_owners.get(pet) == client_id
                or (self.pet_owners.get(pet) is None and pet[1] in own_pets)
            )
        ]
        for pet in pets:
            del self.pets[pet]
            self.pet_owners.pop(pet, None)
        for key in own:
            del self.deliveries[key]
        consent = self.consents.pop(who, None)
        contact = who in self.phones
        phone = self.phones.pop(who, None)
        self.emails.pop(who, None)
        texts = [t for t in self.inbound if phone and (t.clinic_id, t.from_number) == (clinic_id, phone)]
        self.inbound = [t for t in self.inbound if t not in texts]
        return len(pets) + len(own) + (consent is not None) + contact + len(texts)


@dataclass
class InMemoryDeliveries:
    """The deliveries table in memory, reading contacts and consents from `notify`'s dicts."""

    notify: InMemoryNotify
    rows: dict[str, Delivery] = field(default_factory=dict)  # by key
    sending_until: dict[int, datetime] = field(default_factory=dict)

    async def contact(self, clinic_id: str, client_id: str) -> Contact | None:
        who = (clinic_id, client_id)
        if who not in self.notify.phones:
            return None
        consent = self.notify.consents.get(who)
        return Contact(
            self.notify.emails.get(who),
            self.notify.phones[who],
            email_opted_in=bool(consent and consent.email_opted_in),
            sms_opted_in=bool(consent and consent.sms_opted_in),
        )

    async def add(self, delivery: Delivery) -> Delivery:
        if delivery.key not in self.rows:
            self.rows[delivery.key] = replace(delivery, id=len(self.rows) + 1)
        return replace(self.rows[delivery.key])

    async def add_to_batch(self, delivery: Delivery) -> None:
        for row in self.rows.values():
            if (row.clinic_id, row.client_id, row.channel, row.template, row.status) == (
                delivery.clinic_id,
                delivery.client_id,
                delivery.channel,
                Template.NEW_MESSAGES,
                Status.QUEUED,
            ):
                row.params["count"] = int(row.params.get("count", 1)) + 1
                return
        await self.add(delivery)

    async def cancel(
        self,
        clinic_id: str,
        *,
        subject: tuple[str, str] | None = None,
        client_id: str | None = None,
        template: Template | None = None,
        keep: Iterable[str] = (),
        reason: str,
    ) -> int:
        kept = set(keep)
        n = 0
        for row in self.rows.values():
            if (
                row.clinic_id == clinic_id
                and row.status is Status.QUEUED
                and (subject is None or (row.subject_kind, row.subject_id) == subject)
                and (client_id is None or row.client_id == client_id)
                and (template is None or row.template is template)
                and row.key not in kept
            ):
                row.status, row.reason = Status.CANCELLED, reason
                n += 1
        return n

    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        due = sorted(
            (r for r in self.rows.values() if r.status is Status.QUEUED and r.not_before <= now),
            key=lambda r: r.not_before,
        )[:limit]
        out = []
        for row in due:
            clinic = self.notify.clinics.get(row.clinic_id)
            help_text, phone = self.notify.profiles.get(row.clinic_id, (None, None))
            profile = (
                ClinicProfile(
                    clinic.clinic_id, clinic.name, clinic.sms_number, clinic.timezone, help_text, phone
                )
                if clinic
                else None
            )
            pet = self.notify.pets.get((row.clinic_id, row.patient_id or ""))
            out.append(Claimed(replace(row), await self.contact(row.clinic_id, row.client_id), profile, pet))
        return out

    def _by_id(self, delivery_id: int) -> Delivery:
        return next(r for r in self.rows.values() if r.id == delivery_id)

    async def mark_sending(self, ids: Sequence[int], lease_until: datetime) -> None:
        for delivery_id in ids:
            row = self._by_id(delivery_id)
            row.status, row.attempts = Status.SENDING, row.attempts + 1
            self.sending_until[delivery_id] = lease_until

    async def finish_all(self, finishes: Sequence[Finish]) -> None:
        for f in finishes:
            if f.delivery_id not in await self.existing([f.delivery_id]):
                continue  # erased meanwhile: the UPDATE finds no row
            row = self._by_id(f.delivery_id)
            row.status, row.reason = f.status, f.reason
            row.provider_id = f.provider_id or row.provider_id
            row.not_before = f.not_before or row.not_before
            if f.clear_params:
                row.params = {}
            self.sending_until.pop(f.delivery_id, None)

    async def existing(self, ids: Sequence[int]) -> set[int]:
        return {r.id for r in self.rows.values() if r.id is not None and r.id in ids}

    async def expire_leases(self, now: datetime) -> list[Delivery]:
        lost = [self._by_id(i) for i, until in self.sending_until.items() if until < now]
        for row in lost:
            assert row.id is not None
            await self.finish_all([Finish(row.id, Status.UNKNOWN, reason="dispatcher_lost")])
        return lost

    async def provider_status(self, provider_id: str, status: Status, reason: str | None) -> bool:
        for row in self.rows.values():
            if row.provider_id == provider_id and row.status is Status.SENT:
                row.status, row.reason = status, reason
                return True
        return False

    async def list(
        self, clinic_id: str, *, status: Status | None, client_id: str | None, limit: int
    ) -> list[Delivery]:
        found = [
            r
            for r in self.rows.values()
            if r.clinic_id == clinic_id
            and (status is None or r.status is status)
            and (client_id is None or r.client_id == client_id)
        ]
        return sorted(found, key=lambda r: r.id or 0, reverse=True)[:limit]


@dataclass
class InMemoryRepositories:
    notify: InMemoryNotify = field(default_factory=InMemoryNotify)
    deliveries: InMemoryDeliveries = field(init=False)

    def __post_init__(self) -> None:
        self.deliveries = InMemoryDeliveries(self.notify)
        self.notify.deliveries = self.deliveries.rows  # one table, as in the database


@pytest.fixture
def repositories() -> InMemoryRepositories:
    return InMemoryRepositories()


@pytest.fixture
def uow(repositories: InMemoryRepositories) -> FakeUnitOfWork[InMemoryRepositories]:
    return FakeUnitOfWork(repositories)
