"""The deliveries table: idempotent creation, batching, claiming due ones under the consent lock, and
recording what the providers said."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import func
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.db import table_of

from ..domain.delivery import ClinicProfile, Contact, Delivery, Finish, Status, Template
from ..service_layer.unit_of_work import Claimed
from .orm import ClinicRow, ConsentRow, ContactRow, DeliveryRow, PatientRow

deliveries = table_of(DeliveryRow)
clinics = table_of(ClinicRow)
contacts = table_of(ContactRow)
consents = table_of(ConsentRow)
patients = table_of(PatientRow)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        key=row.key,
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        channel=row.channel,
        template=Template(row.template),
        params=dict(row.params),
        not_before=row.not_before,
        status=Status(row.status),
        attempts=row.attempts,
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        patient_id=row.patient_id,
        reason=row.reason,
        provider_id=row.provider_id,
    )


def _values(d: Delivery) -> dict[str, Any]:
    return {
        "key": d.key,
        "clinic_id": d.clinic_id,
        "client_id": d.client_id,
        "channel": d.channel,
        "template": d.template.value,
        "params": d.params,
        "status": d.status.value,
        "not_before": d.not_before,
        "subject_kind": d.subject_kind,
        "subject_id": d.subject_id,
        "patient_id": d.patient_id,
        "reason": d.reason,
    }


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def contact(self, clinic_id: str, client_id: str) -> Contact | None:
        query = (
            select(contacts.c.email, contacts.c.phone, consents.c.email_opted_in, consents.c.sms_opted_in)
            .select_from(
                contacts.outerjoin(
                    consents,
                    and_(
                        consents.c.clinic_id == contacts.c.clinic_id,
                        consents.c.client_id == contacts.c.client_id,
                    ),
                )
            )
            .where(contacts.c.clinic_id == clinic_id, contacts.c.client_id == client_id)
        )
        row = (await self.session.execute(query)).first()
        if row is None:
            return None
        return Contact(row.email, row.phone, bool(row.email_opted_in), bool(row.sms_opted_in))

    async def add(self, delivery: Delivery) -> Delivery:
        """Insert unless its key exists; the stored delivery either way."""
        stmt = (
            pg_insert(deliveries).values(**_values(delivery)).on_conflict_do_nothing(index_elements=["key"])
        )
        await self.session.execute(stmt)
        row = (await self.session.execute(select(deliveries).where(deliveries.c.key == delivery.key))).one()
        return _delivery(row)

    async def add_to_batch(self, delivery: Delivery) -> None:
        """A new-messages notification: a new queued one, or one more message counted in the client's
        open batch on that channel."""
        stmt = pg_insert(deliveries).values(**_values(delivery))
        stmt = stmt.on_conflict_do_update(
            index_elements=["clinic_id", "client_id", "channel"],
            index_where=text("status = 'queued' AND template = 'new_messages'"),
            set_={
                "params": deliveries.c.params.op("||")(
                    func.jsonb_build_object(
                        "count", func.coalesce(deliveries.c.params["count"].astext.cast(Integer), 1) + 1
                    )
                ),
                "updated_at": func.now(),
            },
        )
        await self.session.execute(stmt)

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
        """Cancel queued deliveries about a subject (a reminder) or of a client's template, but those
        whose keys are in `keep`; how many."""
        conditions = [deliveries.c.clinic_id == clinic_id, deliveries.c.status == Status.QUEUED.value]
        if subject is not None:
            conditions += [deliveries.c.subject_kind == subject[0], deliveries.c.subject_id == subject[1]]
        if client_id is not None:
            conditions.append(deliveries.c.client_id == client_id)
        if template is not None:
            conditions.append(deliveries.c.template == template.value)
        kept = list(keep)
        if kept:
            conditions.append(deliveries.c.key.not_in(kept))
        result = await self.session.execute(
            update(deliveries)
            .where(*conditions)
            .values(status=Status.CANCELLED.value, reason=reason, updated_at=func.now())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        """Due queued deliveries, locked (others' claims skip them), with their client's consent locked
        for share: an opt-out committing now waits for this transaction, and one committed before it is
        what this reads. Oldest first."""
        rows = (
            await self.session.execute(
                select(deliveries)
                .where(deliveries.c.status == Status.QUEUED.value, deliveries.c.not_before <= now)
                .order_by(deliveries.c.not_before)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        found = [_delivery(r) for r in rows]
        clients = sorted({(d.clinic_id, d.client_id) for d in found})
        # Locked in key order, as the opt-out locks them: no deadlock between the two.
        consent_rows = (
            await self.session.execute(
                select(
                    consents.c.clinic_id,
                    consents.c.client_id,
                    consents.c.email_opted_in,
                    consents.c.sms_opted_in,
                )
                .where(tuple_(consents.c.clinic_id, consents.c.client_id).in_(clients))
                .order_by(consents.c.clinic_id, consents.c.client_id)
                .with_for_update(read=True)
            )
        ).all()
        consent = {(r.clinic_id, r.client_id): (r.email_opted_in, r.sms_opted_in) for r in consent_rows}
        address_rows = (
            await self.session.execute(
                select(contacts.c.clinic_id, contacts.c.client_id, contacts.c.email, contacts.c.phone).where(
                    tuple_(contacts.c.clinic_id, contacts.c.client_id).in_(clients)
                )
            )
        ).all()
        address = {(r.clinic_id, r.client_id): (r.email, r.phone) for r in address_rows}
        clinic_ids = sorted({d.clinic_id for d in found})
        profiles = {
            r.clinic_id: ClinicProfile(r.clinic_id, r.name, r.sms_number, r.timezone, r.help_text, r.phone)
            for r in (
                await self.session.execute(select(clinics).where(clinics.c.clinic_id.in_(clinic_ids)))
            ).all()
        }
        pets = sorted({(d.clinic_id, d.patient_id) for d in found if d.patient_id})
        names: dict[tuple[str, str], str] = {}
        if pets:
            names = {
                (r.clinic_id, r.patient_id): r.name
                for r in (
                    await self.session.execute(
                        select(patients).where(tuple_(patients.c.clinic_id, patients.c.patient_id).in_(pets))
                    )
                ).all()
            }
        claimed = []
        for d in found:
            who = (d.clinic_id, d.client_id)
            contact = None
            if who in address:
                email_ok, sms_ok = consent.get(who, (False, False))
                contact = Contact(*address[who], email_opted_in=email_ok, sms_opted_in=sms_ok)
            pet = names.get((d.clinic_id, d.patient_id)) if d.patient_id else None
            claimed.append(Claimed(d, contact, profiles.get(d.clinic_id), pet))
        return claimed

    async def mark_sending(self, ids: Sequence[int], lease_until: datetime) -> None:
        if ids:
            await self.session.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(list(ids)))
                .values(
                    status=Status.SENDING.value,
                    attempts=deliveries.c.attempts + 1,
                    lease_until=lease_until,
                    updated_at=func.now(),
                )
            )

    async def finish_all(self, finishes: Sequence[Finish]) -> None:
        if not finishes:
            return
        # One statement, executed for every delivery (asyncpg's executemany: one round trip).
        await self.session.execute(
            text(
                "UPDATE deliveries SET status = :status, reason = :reason, lease_until = NULL,"
                " updated_at = now(), provider_id = COALESCE(:provider_id, provider_id),"
                " not_before = COALESCE(:not_before, not_before),"
                " params = CASE WHEN :clear_params THEN '{}'::jsonb ELSE params END"
                " WHERE id = :delivery_id"
            ),
            [
                {
                    "delivery_id": f.delivery_id,
                    "status": f.status.value,
                    "reason": f.reason,
                    "provider_id": f.provider_id,
                    "not_before": f.not_before,
                    "clear_params": f.clear_params,
                }
                for f in finishes
            ],
        )

    async def existing(self, ids: Sequence[int]) -> set[int]:
        """Which of these deliveries are still there (an erasure deletes a client's)."""
        if not ids:
            return set()
        query = select(deliveries.c.id).where(deliveries.c.id.in_(list(ids)))
        return {int(r[0]) for r in (await self.session.execute(query)).all()}

    async def expire_leases(self, now: datetime) -> list[Delivery]:
        """Deliveries left `sending` by a dispatcher that died: their outcome is unknown."""
        rows = (
            await self.session.execute(
                update(deliveries)
                .where(deliveries.c.status == Status.SENDING.value, deliveries.c.lease_until < now)
                .values(
                    status=Status.UNKNOWN.value,
                    reason="dispatcher_lost",
                    lease_until=None,
                    updated_at=func.now(),
                )
                .returning(*deliveries.c)
            )
        ).all()
        return [_delivery(r) for r in rows]

    async def provider_status(self, provider_id: str, status: Status, reason: str | None) -> bool:
        """A provider's callback: sent → delivered, undelivered or failed, once (callbacks come out of
        order and more than once)."""
        result = await self.session.execute(
            update(deliveries)
            .where(deliveries.c.provider_id == provider_id, deliveries.c.status == Status.SENT.value)
            .values(status=status.value, reason=reason, updated_at=func.now())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list(
        self, clinic_id: str, *, status: Status | None, client_id: str | None, limit: int
    ) -> list[Delivery]:
        query = select(deliveries).where(deliveries.c.clinic_id == clinic_id)
        if status is not None:
            query = query.where(deliveries.c.status == status.value)
        if client_id is not None:
            query = query.where(deliveries.c.client_id == client_id)
        rows = await self.session.execute(query.order_by(deliveries.c.id.desc()).limit(limit))
        return [_delivery(r) for r in rows]
