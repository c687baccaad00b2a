"""notify's repositories in memory, behind the devkit's fake unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_notify.domain.clinics import Clinic, SmsNumberTaken
from petportal_notify.domain.consent import Consent
from petportal_notify.domain.sms import SmsRecipient


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

    async def upsert_contact(self, clinic_id: str, client_id: str, phone: str | None) -> None:
        self.phones[(clinic_id, client_id)] = phone

    async def contact_exists(self, clinic_id: str, client_id: str) -> bool:
        return (clinic_id, client_id) in self.phones

    async def clients_with_phone(self, clinic_id: str, phone: str) -> list[str]:
        return sorted(k for (c, k), p in self.phones.items() if c == clinic_id and p == phone)

    async def ensure_consent(self, consent: Consent) -> None:
        self.consents.setdefault((consent.clinic_id, consent.client_id), replace(consent))

    async def consent(self, clinic_id: str, client_id: str) -> Consent | None:
        stored = self.consents.get((clinic_id, client_id))
        return replace(stored) if stored else None

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

    async def recipient(self, clinic_id: str, client_id: str) -> SmsRecipient | None:
        if (clinic_id, client_id) not in self.phones:
            return None
        clinic = self.clinics.get(clinic_id)
        return SmsRecipient(
            clinic_id=clinic_id,
            client_id=client_id,
            from_number=clinic.sms_number if clinic else None,
            to_number=self.phones[(clinic_id, client_id)],
            consent=await self.consent(clinic_id, client_id),
        )


@dataclass
class InMemoryRepositories:
    notify: InMemoryNotify = field(default_factory=InMemoryNotify)


@pytest.fixture
def repositories() -> InMemoryRepositories:
    return InMemoryRepositories()


@pytest.fixture
def uow(repositories: InMemoryRepositories) -> FakeUnitOfWork[InMemoryRepositories]:
    return FakeUnitOfWork(repositories)
