"""Bookable slots, bookings and the outbound queue in PostgreSQL, in the unit of work's transaction.

Who gets a slot is one conditional UPDATE (`hold`, `take`): the row is changed only while it is open,
unbooked and not held by someone else, so of any number of parents racing for it exactly one row
comes back.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime.auth import ClientRef

from ..domain.batch import SETTINGS_KEY
from ..domain.booking import Booking, BookingStatus, Slot
from ..domain.outbound import OutboundItem, OutboundKind, OutboundStatus
from ..domain.records import SlotRecord, version_key
from .orm import BookingRow, ClinicalRecordRow, ClinicRow, OutboundItemRow, PatientRow, SlotRow


def _slot(row: Any) -> Slot:
    return Slot(
        clinic_id=row.clinic_id,
        slot_id=row.slot_id,
        starts_at=row.starts_at,
        duration_minutes=row.duration_minutes,
        appointment_type=row.appointment_type,
        provider=row.provider,
    )


def _free(clinic_id: str, client_id: str, now: datetime) -> Any:
    """Open, unbooked, in the future, and not held by another client (or their hold expired)."""
    return and_(
        col(SlotRow.clinic_id) == clinic_id,
        col(SlotRow.open).is_(True),
        col(SlotRow.booking_id).is_(None),
        col(SlotRow.starts_at) > now,
        or_(
            col(SlotRow.held_until).is_(None),
            col(SlotRow.held_until) <= now,
            col(SlotRow.held_by) == client_id,
        ),
    )


_SLOT_COLUMNS: tuple[Any, ...] = (
    col(SlotRow.clinic_id),
    col(SlotRow.slot_id),
    col(SlotRow.starts_at),
    col(SlotRow.duration_minutes),
    col(SlotRow.appointment_type),
    col(SlotRow.provider),
)


# A booking is one statement: the slot is taken only if it is free for the client, the clinic takes
# direct bookings and the pet is the client's. Written out once (no per-request query building): this
# is the path every parent racing for a slot runs.
_TAKE = text(
    """
    UPDATE booking_slots SET booking_id = :booking_id, hold_id = NULL, held_by = NULL, held_until = NULL
    WHERE clinic_id = :clinic_id AND slot_id = :slot_id
      AND open AND booking_id IS NULL AND starts_at > :now
      AND (held_until IS NULL OR held_until <= :now OR held_by = :client_id)
      AND EXISTS (
        SELECT 1 FROM clinical_records
        WHERE clinic_id = :clinic_id AND kind = 'clinic_settings' AND record_id = 'clinic'
          AND state ->> 'booking_mode' = 'direct')
      AND EXISTS (
        SELECT 1 FROM patients
        WHERE clinic_id = :clinic_id AND patient_id = :patient_id AND client_id = :client_id
          AND NOT deceased)
    RETURNING clinic_id, slot_id, starts_at, duration_minutes, appointment_type, provider
    """
)
# Why a booking was refused, in one round trip (only refusals pay for it).
_WHY_NOT = text(
    """
    SELECT
      EXISTS (SELECT 1 FROM clinics WHERE clinic_id = :clinic_id) AS known,
      (SELECT state ->> 'booking_mode' FROM clinical_records
        WHERE clinic_id = :clinic_id AND kind = 'clinic_settings' AND record_id = 'clinic') AS mode,
      EXISTS (
        SELECT 1 FROM patients
        WHERE clinic_id = :clinic_id AND patient_id = :patient_id AND client_id = :client_id
          AND NOT deceased) AS pet,
      EXISTS (
        SELECT 1 FROM booking_slots
        WHERE clinic_id = :clinic_id AND slot_id = :slot_id AND open AND starts_at > :now) AS slot
    """
)
_ADD_BOOKING = text(
    """
    INSERT INTO bookings (id, clinic_id, client_id, patient_id, slot_id, starts_at, duration_minutes,
                          appointment_type, provider, note, status, created_at)
    VALUES (:id, :clinic_id, :client_id, :patient_id, :slot_id, :starts_at, :duration_minutes,
            :appointment_type, :provider, :note, :status, :created_at)
    """
)


class BookingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def take_for(
        self,
        clinic_id: str,
        client_id: str,
        slot_id: str,
        patient_id: str,
        booking_id: uuid.UUID,
        now: datetime,
    ) -> Slot | None:
        """Book the slot for the client's pet if it is free for them, the clinic takes direct bookings
        and the pet is theirs; None otherwise (atomic)."""
        result = await self.session.execute(
            _TAKE,
            {
                "booking_id": booking_id,
                "clinic_id": clinic_id,
                "slot_id": slot_id,
                "client_id": client_id,
                "patient_id": patient_id,
                "now": now,
            },
        )
        row = result.first()
        return _slot(row) if row else None

    async def why_not(
        self, clinic_id: str, client_id: str, slot_id: str, patient_id: str, now: datetime
    ) -> str:
        """Why `take_for` refused: "clinic" (unknown), "mode" (no direct booking), "patient", "slot"
        (no such open future slot) or "taken"."""
        params = {
            "clinic_id": clinic_id,
            "client_id": client_id,
            "slot_id": slot_id,
            "patient_id": patient_id,
        }
        row = (await self.session.execute(_WHY_NOT, {**params, "now": now})).one()
        if not row.known:
            return "clinic"
        if row.mode != "direct":
            return "mode"
        if not row.pet:
            return "patient"
        return "taken" if row.slot else "slot"

    async def upsert_slots(self, clinic_id: str, slots: Sequence[SlotRecord], now: datetime) -> None:
        """The PIMS's slots, unless the stored one has a newer PIMS version; a hold or booking on a
        slot stays (the slot is no longer free once the PIMS says it is not open)."""
        if not slots:
            return
        latest = {slot.slot_id: slot for slot in slots}  # the last of a batch wins, as for records
        stmt = insert(SlotRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=["clinic_id", "slot_id"],
            set_={
                name: stmt.excluded[name]
                for name in (
                    "starts_at",
                    "duration_minutes",
                    "appointment_type",
                    "provider",
                    "open",
                    "version",
                    "updated_at",
                )
            },
            where=or_(
                col(SlotRow.version).is_(None),
                stmt.excluded.version.is_(None),
                stmt.excluded.version >= col(SlotRow.version),
            ),
        )
        await self.session.exec(
            stmt,
            params=[
                {
                    "clinic_id": clinic_id,
                    "slot_id": s.slot_id,
                    "starts_at": s.starts_at,
                    "duration_minutes": s.duration_minutes,
                    "appointment_type": s.appointment_type,
                    "provider": s.provider,
                    "open": s.status == "open",
                    "version": version_key(s.version),
                    "updated_at": now,
                }
                for s in latest.values()
            ],
        )

    async def booking_settings(self, clinic_id: str) -> tuple[str | None, str] | None:
        """(booking mode, timezone) of a registered clinic; None for a clinic sync does not know."""
        result = await self.session.exec(
            select(ClinicRow.timezone, ClinicalRecordRow.state)
            .select_from(ClinicRow)
            .outerjoin(
                ClinicalRecordRow,
                and_(
                    col(ClinicalRecordRow.clinic_id) == col(ClinicRow.clinic_id),
                    col(ClinicalRecordRow.kind) == SETTINGS_KEY[0],
                    col(ClinicalRecordRow.record_id) == SETTINGS_KEY[1],
                ),
            )
            .where(col(ClinicRow.clinic_id) == clinic_id)
        )
        row = result.first()
        if row is None:
            return None
        timezone, settings = row
        return (settings or {}).get("booking_mode"), timezone

    async def free_slots(
        self, clinic_id: str, client_id: str, start: datetime, end: datetime, now: datetime, limit: int
    ) -> list[Slot]:
        result = await self.session.exec(
            select(*_SLOT_COLUMNS)
            .where(
                _free(clinic_id, client_id, now),
                col(SlotRow.starts_at) >= start,
                col(SlotRow.starts_at) < end,
            )
            .order_by(col(SlotRow.starts_at), col(SlotRow.slot_id))
            .limit(limit)
        )
        return [_slot(row) for row in result]

    async def slot_state(self, clinic_id: str, slot_id: str, now: datetime) -> str:
        """ "missing" (no such open future slot) or "taken" (it exists but someone else has it)."""
        row = (
            await self.session.exec(
                select(SlotRow.slot_id).where(
                    col(SlotRow.clinic_id) == clinic_id,
                    col(SlotRow.slot_id) == slot_id,
                    col(SlotRow.open).is_(True),
                    col(SlotRow.starts_at) > now,
                )
            )
        ).first()
        return "missing" if row is None else "taken"

    async def hold(
        self, clinic_id: str, client_id: str, slot_id: str, hold_id: uuid.UUID, until: datetime, now: datetime
    ) -> Slot | None:
        """Hold a free slot for the client until `until`, letting go of their other hold at the clinic."""
        await self.session.exec(
            update(SlotRow)
            .where(
                col(SlotRow.clinic_id) == clinic_id,
                col(SlotRow.held_by) == client_id,
                col(SlotRow.slot_id) != slot_id,
            )
            .values(hold_id=None, held_by=None, held_until=None)
        )
        result = await self.session.exec(
            update(SlotRow)
            .where(_free(clinic_id, client_id, now), col(SlotRow.slot_id) == slot_id)
            .values(hold_id=hold_id, held_by=client_id, held_until=until)
            .returning(*_SLOT_COLUMNS)
        )
        row = result.first()
        return _slot(row) if row else None

    async def release_hold(self, clinic_id: str, client_id: str, hold_id: uuid.UUID) -> bool:
        result = await self.session.exec(
            update(SlotRow)
            .where(
                col(SlotRow.clinic_id) == clinic_id,
                col(SlotRow.held_by) == client_id,
                col(SlotRow.hold_id) == hold_id,
            )
            .values(hold_id=None, held_by=None, held_until=None)
        )
        return bool(result.rowcount)

    async def free(self, clinic_id: str, booking_id: uuid.UUID, *, still_open: bool) -> None:
        """The booking no longer has its slot; with `still_open` False the PIMS said the time is gone."""
        values: dict[str, Any] = {"booking_id": None}
        if not still_open:
            values["open"] = False
        await self.session.exec(
            update(SlotRow)
            .where(col(SlotRow.clinic_id) == clinic_id, col(SlotRow.booking_id) == booking_id)
            .values(**values)
        )

    async def owns_patient(self, clinic_id: str, client_id: str, patient_id: str) -> bool:
        row = (
            await self.session.exec(
                select(PatientRow.patient_id).where(
                    col(PatientRow.clinic_id) == clinic_id,
                    col(PatientRow.patient_id) == patient_id,
                    col(PatientRow.client_id) == client_id,
                    col(PatientRow.deceased).is_(False),
                )
            )
        ).first()
        return row is not None

    async def appointment(
        self, clinic_id: str, appointment_id: str
    ) -> tuple[str | None, dict[str, Any]] | None:
        """(client, state) of an appointment as the PIMS last sent it."""
        row = (
            await self.session.exec(
                select(ClinicalRecordRow.client_id, ClinicalRecordRow.state).where(
                    col(ClinicalRecordRow.clinic_id) == clinic_id,
                    col(ClinicalRecordRow.kind) == "appointment",
                    col(ClinicalRecordRow.record_id) == appointment_id,
                )
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def add(self, booking: Booking) -> None:
        await self.session.execute(
            _ADD_BOOKING,
            {
                "id": booking.id,
                "clinic_id": booking.clinic_id,
                "client_id": booking.client_id,
                "patient_id": booking.patient_id,
                "slot_id": booking.slot.slot_id,
                "starts_at": booking.slot.starts_at,
                "duration_minutes": booking.slot.duration_minutes,
                "appointment_type": booking.slot.appointment_type,
                "provider": booking.slot.provider,
                "note": booking.note,
                "status": booking.status.value,
                "created_at": booking.created_at,
            },
        )

    async def get(self, clinic_id: str, booking_id: uuid.UUID, *, lock: bool = False) -> Booking | None:
        query = select(BookingRow).where(
            col(BookingRow.clinic_id) == clinic_id, col(BookingRow.id) == booking_id
        )
        row = (await self.session.exec(query.with_for_update() if lock else query)).first()
        return _booking(row) if row else None

    async def save(self, booking: Booking) -> None:
        await self.session.exec(
            update(BookingRow)
            .where(col(BookingRow.id) == booking.id)
            .values(status=booking.status.value, reason=booking.reason, decided_at=booking.decided_at)
        )

    async def for_clients(self, memberships: Collection[ClientRef], limit: int) -> list[Booking]:
        if not memberships:
            return []
        result = await self.session.exec(
            select(BookingRow)
            .where(
                tuple_(col(BookingRow.clinic_id), col(BookingRow.client_id)).in_(
                    [(m.clinic_id, m.client_id) for m in memberships]
                )
            )
            .order_by(col(BookingRow.created_at).desc())
            .limit(limit)
        )
        return [_booking(row) for row in result]

    async def erase_client(self, clinic_id: str, client_id: str) -> int:
        """The client's bookings and outbound items go; their holds and booked slots are free again."""
        bookings = select(BookingRow.id).where(
            col(BookingRow.clinic_id) == clinic_id, col(BookingRow.client_id) == client_id
        )
        await self.session.exec(
            update(SlotRow)
            .where(col(SlotRow.clinic_id) == clinic_id, col(SlotRow.booking_id).in_(bookings))
            .values(booking_id=None)
        )
        await self.session.exec(
            update(SlotRow)
            .where(col(SlotRow.clinic_id) == clinic_id, col(SlotRow.held_by) == client_id)
            .values(hold_id=None, held_by=None, held_until=None)
        )
        deleted = 0
        for table in (BookingRow, OutboundItemRow):
            result = await self.session.exec(
                delete(table).where(col(table.clinic_id) == clinic_id, col(table.client_id) == client_id)
            )
            deleted += int(result.rowcount or 0)
        return deleted


def _booking(row: BookingRow) -> Booking:
    slot = Slot(
        row.clinic_id, row.slot_id, row.starts_at, row.duration_minutes, row.appointment_type, row.provider
    )
    return Booking(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        patient_id=row.patient_id,
        slot=slot,
        note=row.note,
        id=row.id,
        status=BookingStatus(row.status),
        reason=row.reason,
        created_at=row.created_at,
        decided_at=row.decided_at,
    )


_BACKLOG = text(
    "SELECT status, count(*), min(created_at) FROM outbound_items "
    "WHERE status IN ('pending', 'flagged') GROUP BY status"
)


class OutboundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, item: OutboundItem) -> bool:
        """Queue the item; False (nothing queued) when one with its id is there already."""
        result = await self.session.exec(
            insert(OutboundItemRow)
            .values(
                id=item.id,
                clinic_id=item.clinic_id,
                client_id=item.client_id,
                kind=item.kind.value,
                payload=item.payload,
                status=item.status.value,
                created_at=item.created_at,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        return bool(result.rowcount)

    async def get(self, clinic_id: str, item_id: uuid.UUID, *, lock: bool = False) -> OutboundItem | None:
        query = select(OutboundItemRow).where(
            col(OutboundItemRow.clinic_id) == clinic_id, col(OutboundItemRow.id) == item_id
        )
        row = (await self.session.exec(query.with_for_update() if lock else query)).first()
        return _item(row) if row else None

    async def save(self, item: OutboundItem, *, requeue: bool = False) -> None:
        values: dict[str, Any] = {
            "status": item.status.value,
            "answered_at": item.answered_at,
            "reason": item.reason,
            "reason_text": item.reason_text,
            "pims_reference": item.pims_reference,
        }
        if requeue:  # a new cursor, so connectors that pulled past it see it again
            values["seq"] = text("nextval('outbound_items_seq')")
        await self.session.exec(
            update(OutboundItemRow).where(col(OutboundItemRow.id) == item.id).values(**values)
        )

    async def pending(self, clinic_id: str, after: int, limit: int) -> list[OutboundItem]:
        result = await self.session.exec(
            select(OutboundItemRow)
            .where(
                col(OutboundItemRow.clinic_id) == clinic_id,
                col(OutboundItemRow.status) == OutboundStatus.PENDING.value,
                col(OutboundItemRow.seq) > after,
            )
            .order_by(col(OutboundItemRow.seq))
            .limit(limit)
        )
        return [_item(row) for row in result]

    async def backlog(self) -> tuple[dict[str, int], datetime | None]:
        """Unanswered items of every clinic by status (pending, flagged), and the oldest pending one's
        creation time: a connector that stopped pulling shows as a growing age."""
        result = await self.session.execute(_BACKLOG)
        counts = {"pending": 0, "flagged": 0}
        oldest: datetime | None = None
        for status, count, first in result:
            counts[status] = int(count)
            if status == "pending":
                oldest = first
        return counts, oldest

    async def for_clinic(
        self, clinic_id: str, status: OutboundStatus | None, limit: int
    ) -> list[OutboundItem]:
        query = select(OutboundItemRow).where(col(OutboundItemRow.clinic_id) == clinic_id)
        if status is not None:
            query = query.where(col(OutboundItemRow.status) == status.value)
        result = await self.session.exec(query.order_by(col(OutboundItemRow.seq).desc()).limit(limit))
        return [_item(row) for row in result]


def _item(row: OutboundItemRow) -> OutboundItem:
    return OutboundItem(
        clinic_id=row.clinic_id,
        client_id=row.client_id,
        kind=OutboundKind(row.kind),
        payload=row.payload,
        id=row.id,
        status=OutboundStatus(row.status),
        seq=int(row.seq or 0),
        created_at=row.created_at,
        answered_at=row.answered_at,
        reason=row.reason,
        reason_text=row.reason_text,
        pims_reference=row.pims_reference,
    )
