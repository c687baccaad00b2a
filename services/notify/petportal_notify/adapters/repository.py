"""notify's tables in PostgreSQL, in the unit of work's transaction; rows leave as domain objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import func
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.db import table_of

from ..domain.clinics import Clinic, SmsNumberTaken
from ..domain.consent import Consent
from ..domain.sms import InboundText
from ..domain.stops import SmsStop
from .deliveries import DeliveryRepository
from .orm import ClinicRow, ConsentRow, ContactRow, DeliveryRow, InboundSmsRow, PatientRow, SmsStopRow

clinics = table_of(ClinicRow)
contacts = table_of(ContactRow)
consents = table_of(ConsentRow)
deliveries = table_of(DeliveryRow)
inbound_sms = table_of(InboundSmsRow)
patients = table_of(PatientRow)
sms_stops = table_of(SmsStopRow)


def _consent(row: Any) -> Consent:
    return Consent(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        sms_opted_in=row.sms_opted_in,
        email_opted_in=row.email_opted_in,
        source=row.source,
        updated_at=row.updated_at,
    )


class NotifyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert_clinic(self, clinic: Clinic) -> None:
        stmt = pg_insert(clinics).values(
            clinic_id=clinic.clinic_id,
            name=clinic.name,
            sms_number=clinic.sms_number,
            timezone=clinic.timezone,
        )
        try:
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["clinic_id"],
                    set_={
                        "name": stmt.excluded.name,
                        "sms_number": stmt.excluded.sms_number,
                        "timezone": stmt.excluded.timezone,
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
            )
        except IntegrityError as exc:
            # The clinic id conflict is an update: only the unique SMS number can be violated.
            raise SmsNumberTaken() from exc

    async def clinic_by_number(self, sms_number: str) -> Clinic | None:
        row = (await self.session.execute(select(clinics).where(clinics.c.sms_number == sms_number))).first()
        return Clinic(row.clinic_id, row.name, row.sms_number, row.timezone) if row else None

    async def clinic(self, clinic_id: str) -> Clinic | None:
        row = (await self.session.execute(select(clinics).where(clinics.c.clinic_id == clinic_id))).first()
        return Clinic(row.clinic_id, row.name, row.sms_number, row.timezone) if row else None

    async def update_clinic_profile(
        self, clinic_id: str, *, help_text: str | None, phone: str | None
    ) -> None:
        await self.session.execute(
            update(clinics)
            .where(clinics.c.clinic_id == clinic_id)
            .values(help_text=help_text, phone=phone, updated_at=func.now())
        )

    async def upsert_contact(
        self, clinic_id: str, client_id: str, phone: str | None, email: str | None = None
    ) -> None:
        stmt = pg_insert(contacts).values(clinic_id=clinic_id, client_id=client_id, phone=phone, email=email)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["clinic_id", "client_id"],
                set_={
                    "phone": stmt.excluded.phone,
                    "email": stmt.excluded.email,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )

    async def upsert_patient(
        self, clinic_id: str, patient_id: str, name: str, *, client_id: str | None
    ) -> None:
        stmt = pg_insert(patients).values(
            clinic_id=clinic_id, patient_id=patient_id, name=name, client_id=client_id
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["clinic_id", "patient_id"],
                set_={"name": stmt.excluded.name, "client_id": stmt.excluded.client_id},
            )
        )

    async def contact_exists(self, clinic_id: str, client_id: str) -> bool:
        query = select(contacts.c.client_id).where(
            contacts.c.clinic_id == clinic_id, contacts.c.client_id == client_id
        )
        return (await self.session.execute(query)).first() is not None

    async def clients_with_phone(self, clinic_id: str, phone: str) -> list[str]:
        query = (
            select(contacts.c.client_id)
            .where(contacts.c.clinic_id == clinic_id, contacts.c.phone == phone)
            .order_by(contacts.c.client_id)
        )
        return [r[0] for r in (await self.session.execute(query)).all()]

    async def ensure_consent(self, consent: Consent) -> bool:
        """Create the consent record with these values if the client has none yet; True if created."""
        result = await self.session.execute(
            pg_insert(consents)
            .values(**self._values(consent))
            .on_conflict_do_nothing(index_elements=["clinic_id", "client_id"])
            .returning(consents.c.client_id)
        )
        return result.first() is not None

    async def consent(self, clinic_id: str, client_id: str, *, lock: bool = False) -> Consent | None:
        query = select(consents).where(consents.c.clinic_id == clinic_id, consents.c.client_id == client_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return _consent(row) if row else None

    async def contact_phone(self, clinic_id: str, client_id: str) -> str | None:
        query = select(contacts.c.phone).where(
            contacts.c.clinic_id == clinic_id, contacts.c.client_id == client_id
        )
        phone: str | None = (await self.session.execute(query)).scalar_one_or_none()
        return phone

    async def consents_for_update(self, clinic_id: str, client_ids: Sequence[str]) -> list[Consent]:
        """Consent records locked for this transaction (created with defaults where missing).

        Locked in client id order, so two transactions touching the same clients cannot deadlock.
        """
        for client_id in client_ids:
            await self.ensure_consent(Consent(clinic_id=clinic_id, client_id=client_id))
        query = (
            select(consents)
            .where(consents.c.clinic_id == clinic_id, consents.c.client_id.in_(list(client_ids)))
            .order_by(consents.c.client_id)
            .with_for_update()
        )
        return [_consent(r) for r in (await self.session.execute(query)).all()]

    async def save_consent(self, consent: Consent) -> None:
        await self.session.execute(
            update(consents)
            .where(consents.c.clinic_id == consent.clinic_id, consents.c.client_id == consent.client_id)
            .values(
                sms_opted_in=consent.sms_opted_in,
                email_opted_in=consent.email_opted_in,
                source=consent.source,
                updated_at=consent.updated_at,
            )
        )

    async def log_inbound(
        self, *, clinic_id: str, from_number: str, body: str, keyword: str | None, matched_clients: int
    ) -> None:
        await self.session.execute(
            insert(inbound_sms).values(
                clinic_id=clinic_id,
                from_number=from_number,
                body=body,
                keyword=keyword,
                matched_clients=matched_clients,
            )
        )

    async def inbound_texts(self, clinic_id: str, *, unmatched_only: bool, limit: int) -> list[InboundText]:
        query = select(inbound_sms).where(inbound_sms.c.clinic_id == clinic_id)
        if unmatched_only:
            query = query.where(inbound_sms.c.matched_clients == 0)
        rows = await self.session.execute(query.order_by(inbound_sms.c.id.desc()).limit(limit))
        return [
            InboundText(r.id, r.from_number, r.body, r.keyword, r.matched_clients, r.received_at)
            for r in rows
        ]

    # --- the numbers kept as stopped after their client's erasure (domain/stops.py) -------------

    async def keep_sms_stop(self, stop: SmsStop) -> None:
        """Keep the stop (the earliest opt-out when the number is already kept)."""
        stmt = pg_insert(sms_stops).values(
            clinic_id=stop.clinic_id, phone_digest=stop.phone_digest, opted_out_at=stop.opted_out_at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["clinic_id", "phone_digest"],
                set_={"opted_out_at": func.least(sms_stops.c.opted_out_at, stmt.excluded.opted_out_at)},
            )
        )

    async def sms_stopped(self, clinic_id: str, phone_digest: str) -> bool:
        query = select(sms_stops.c.phone_digest).where(
            sms_stops.c.clinic_id == clinic_id, sms_stops.c.phone_digest == phone_digest
        )
        return (await self.session.execute(query)).first() is not None

    async def forget_sms_stop(self, clinic_id: str, phone_digest: str) -> bool:
        result = await self.session.execute(
            delete(sms_stops).where(
                sms_stops.c.clinic_id == clinic_id, sms_stops.c.phone_digest == phone_digest
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- erasure ----------------------------------------------------------------------------------

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """Delete everything notify holds about the client at the clinic: their pets' names, their
        deliveries (template values, provider ids), their consent, their contact row (phone, email)
        and the clinic's inbound texts from their phone; how many rows. Clinic-wide rows stay, and so
        does sms_stops (a keyed hash, written before this by the use case)."""
        own_deliveries = and_(deliveries.c.clinic_id == clinic_id, deliveries.c.client_id == client_id)
        # Pets recorded before patients had a client_id are found through the client's deliveries.
        legacy_pets = select(deliveries.c.patient_id).where(
            own_deliveries, deliveries.c.patient_id.is_not(None)
        )
        statements = [
            delete(patients).where(
                patients.c.clinic_id == clinic_id,
                or_(
                    patients.c.client_id == client_id,
                    and_(patients.c.client_id.is_(None), patients.c.patient_id.in_(legacy_pets)),
                ),
            ),
            delete(deliveries).where(own_deliveries),
            delete(consents).where(consents.c.clinic_id == clinic_id, consents.c.client_id == client_id),
        ]
        deleted = 0
        for statement in statements:
            deleted += int((await self.session.execute(statement)).rowcount or 0)  # type: ignore[attr-defined]
        # The phone is read from the contact row as it is deleted, for the texts from it.
        removed = await self.session.execute(
            delete(contacts)
            .where(contacts.c.clinic_id == clinic_id, contacts.c.client_id == client_id)
            .returning(contacts.c.phone)
        )
        phones = [phone for (phone,) in removed.all()]
        deleted += len(phones)
        numbers = [phone for phone in phones if phone]
        if numbers:
            texts = await self.session.execute(
                delete(inbound_sms).where(
                    inbound_sms.c.clinic_id == clinic_id, inbound_sms.c.from_number.in_(numbers)
                )
            )
            deleted += int(texts.rowcount or 0)  # type: ignore[attr-defined]
        return deleted

    @staticmethod
    def _values(consent: Consent) -> dict[str, Any]:
        return {
            "clinic_id": consent.clinic_id,
            "client_id": consent.client_id,
            "sms_opted_in": consent.sms_opted_in,
            "email_opted_in": consent.email_opted_in,
            "source": consent.source,
            "updated_at": consent.updated_at,
        }


@dataclass(frozen=True)
class SqlRepositories:
    notify: NotifyRepository
    deliveries: DeliveryRepository


def sql_repositories(session: AsyncSession) -> SqlRepositories:
    return SqlRepositories(notify=NotifyRepository(session), deliveries=DeliveryRepository(session))
