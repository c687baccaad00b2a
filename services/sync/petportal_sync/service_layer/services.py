"""sync's use cases. Each takes the session of the caller's unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from sqlmodel.ext.asyncio.session import AsyncSession

from petportal_runtime import outbox, telemetry
from petportal_schemas import ClinicRegistered, Envelope
from petportal_schemas.events import PimsName

from ..adapters.orm import ClinicRow
from ..adapters.repository import Clinic, SyncRepository
from ..domain.apikeys import generate_api_key, hash_api_key, looks_like_api_key
from ..domain.batch import plan_batch
from ..domain.records import (
    EnrolmentRecord,
    PatientRecord,
    PimsRecord,
    ProgramRecord,
    Rejection,
    validate_record,
)

PRODUCER = "sync"


class ClinicExistsError(Exception):
    pass


RECORD_KINDS = frozenset({"contact", "patient", "program", "enrolment"})
PIMS_NAMES = frozenset(get_args(PimsName))
_meter = telemetry.meter("sync")
_accepted_records = _meter.create_counter(
    "petportal_sync_accepted_records", description="PIMS records applied, by PIMS"
)
_rejected_records = _meter.create_counter(
    "petportal_sync_rejected_records", description="PIMS records rejected by validation, by kind and PIMS"
)


@dataclass(frozen=True)
class BatchResult:
    accepted: int
    rejected: list[Rejection]


async def register_clinic(
    session: AsyncSession,
    *,
    clinic_id: str,
    name: str,
    pims: PimsName,
    sms_number: str | None,
    timezone: str,
) -> str:
    """Creates the clinic and returns its API key (only its hash is kept)."""
    event = ClinicRegistered(name=name, pims=pims, sms_number=sms_number, timezone=timezone)
    api_key = generate_api_key()
    row = ClinicRow(
        clinic_id=clinic_id,
        name=name,
        pims=pims,
        sms_number=sms_number,
        timezone=timezone,
        api_key_hash=hash_api_key(api_key),
    )
    if not await SyncRepository(session).add_clinic(row):
        raise ClinicExistsError(f"clinic {clinic_id} already exists")
    await outbox.add_event(
        session, Envelope.wrap(event, clinic_id=clinic_id, client_id=None, producer=PRODUCER)
    )
    return api_key


async def authenticate_clinic(session: AsyncSession, api_key: str) -> Clinic | None:
    if not looks_like_api_key(api_key):
        return None
    return await SyncRepository(session).clinic_by_key_hash(hash_api_key(api_key))


def validate_records(
    raw_records: Sequence[dict[str, Any]], phone_region: str
) -> tuple[list[tuple[int, PimsRecord]], list[Rejection]]:
    valid: list[tuple[int, PimsRecord]] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raw_records):
        outcome = validate_record(raw, index, phone_region=phone_region)
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
        else:
            valid.append((index, outcome))
    return valid, rejected


async def receive_records(
    session: AsyncSession,
    clinic_id: str,
    raw_records: Sequence[dict[str, Any]],
    *,
    phone_region: str,
    pims: str,
) -> BatchResult:
    """Validates each record on its own, applies the valid ones with their events, keeps the rest."""
    # CPU-bound (about 0.2 ms a record): off the event loop, before the first query holds a connection.
    valid, rejected = await asyncio.to_thread(validate_records, raw_records, phone_region)

    repo = SyncRepository(session)
    await repo.lock_clinic(clinic_id)
    records = [r for _, r in valid]
    data = await repo.load(
        clinic_id,
        client_ids={r.client_id for r in records if not isinstance(r, ProgramRecord)},
        patient_ids={r.patient_id for r in records if isinstance(r, PatientRecord)},
        program_codes={r.program_code for r in records if isinstance(r, ProgramRecord | EnrolmentRecord)},
        enrolments={(r.client_id, r.program_code) for r in records if isinstance(r, EnrolmentRecord)},
    )
    plan = await asyncio.to_thread(plan_batch, valid, data)
    await repo.apply(clinic_id, plan)
    await outbox.add_events(
        session,
        [
            Envelope.wrap(p.event, clinic_id=clinic_id, client_id=p.client_id, producer=PRODUCER)
            for p in plan.events
        ],
    )
    rejected = sorted(rejected + plan.rejections, key=lambda r: r.index)
    await repo.add_rejections(clinic_id, rejected, raw_records)
    # Only known kinds and PIMS names become labels: a connector must not be able to mint metric series.
    pims_label = pims if pims in PIMS_NAMES else "unknown"
    if plan.accepted:
        _accepted_records.add(plan.accepted, {"pims": pims_label})
    for rejection in rejected:
        kind = rejection.kind if rejection.kind in RECORD_KINDS else "unknown"
        _rejected_records.add(1, {"kind": kind, "pims": pims_label})
    return BatchResult(accepted=plan.accepted, rejected=rejected)
