"""sync's use cases: register a clinic, authenticate its connector, apply a batch of PIMS records and
list what was rejected. Each takes a unit of work (one transaction) and never a session."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, get_args

from petportal_runtime import telemetry
from petportal_runtime.erasure import erase
from petportal_runtime.outbox import current_trace
from petportal_schemas import (
    ClientErasureRequested,
    ClientRemoved,
    ClinicRegistered,
    Envelope,
    PatientRemoved,
    new_event_ids,
)
from petportal_schemas.pims import PimsName

from ..domain.adapters import ADAPTERS, Adapter, native_field
from ..domain.apikeys import ApiKeyInfo, ApiKeyNotFound, generate_api_key, hash_api_key, looks_like_api_key
from ..domain.batch import BatchPlan, plan_steps, references
from ..domain.clinics import Clinic, ClinicExistsError, ClinicRegistration, InvalidApiKey
from ..domain.records import (
    KINDS,
    ContactRecord,
    FieldError,
    PatientRecord,
    PimsRecord,
    Rejection,
    StoredRejection,
    validate_record,
)
from ..domain.snapshots import (
    SNAPSHOT_EXPIRY,
    Snapshot,
    SnapshotClosed,
    SnapshotIncomplete,
    SnapshotNotFound,
    due_for_reconciliation,
)
from .unit_of_work import SyncUnitOfWork

PRODUCER = "sync"
# sync's consumer of other services' events (its Kafka consumer group is petportal-sync).
CONSUMER = "sync"

T = TypeVar("T")
RECORD_KINDS = frozenset(KINDS)
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
    uow: SyncUnitOfWork,
    *,
    clinic_id: str,
    name: str,
    pims: PimsName,
    sms_number: str | None,
    timezone: str,
) -> str:
    """Creates the clinic, publishes `ClinicRegistered` and returns its API key (only its hash is
    kept); `ClinicExistsError` if the id is taken."""
    event = ClinicRegistered(name=name, pims=pims, sms_number=sms_number, timezone=timezone)
    api_key = generate_api_key()
    clinic = ClinicRegistration(
        clinic_id=clinic_id,
        name=name,
        pims=pims,
        sms_number=sms_number,
        timezone=timezone,
        api_key_hash=hash_api_key(api_key),
    )
    async with uow:
        if not await uow.repositories.sync.add_clinic(clinic):
            raise ClinicExistsError(clinic_id)
        await uow.publish(Envelope.wrap(event, clinic_id=clinic_id, client_id=None, producer=PRODUCER))
    return api_key


async def authenticate_clinic(uow: SyncUnitOfWork, api_key: str | None) -> Clinic:
    """The clinic whose API key this is; `InvalidApiKey` otherwise (or without a key)."""
    clinic = None
    if api_key is not None and looks_like_api_key(api_key):
        async with uow:
            clinic = await uow.repositories.sync.clinic_by_key_hash(hash_api_key(api_key))
    if clinic is None:
        raise InvalidApiKey()
    return clinic


def validate_records(
    raw_records: Sequence[dict[str, Any]], phone_region: str, *, start: int = 0
) -> tuple[list[tuple[int, PimsRecord]], list[Rejection]]:
    """`start`: the batch index of the first record (for a slice of a batch)."""
    valid: list[tuple[int, PimsRecord]] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raw_records, start):
        outcome = validate_record(raw, index, phone_region=phone_region)
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
        else:
            valid.append((index, outcome))
    return valid, rejected


class WrongPims(ValueError):
    """A native batch for another PIMS than the clinic's."""

    def __init__(self, sent: str, clinic_pims: str) -> None:
        super().__init__(f"this clinic's practice-management system is {clinic_pims}, not {sent}")


def validate_native_records(
    adapter: Adapter, raw_records: Sequence[Any], phone_region: str, *, start: int = 0
) -> tuple[list[tuple[int, PimsRecord]], list[Rejection], dict[int, dict[str, str]]]:
    """Native records mapped to canonical ones and validated; rejections name the PIMS's fields."""
    valid: list[tuple[int, PimsRecord]] = []
    rejected: list[Rejection] = []
    names: dict[int, dict[str, str]] = {}
    for index, raw in enumerate(raw_records, start):
        canonical, names[index], problem = adapter.to_canonical(raw)
        if canonical is None:
            rejected.append(
                Rejection(index, None, (FieldError(adapter.type_field, problem or "not mappable"),))
            )
            continue
        outcome = validate_record(canonical, index, phone_region=phone_region)
        if isinstance(outcome, Rejection):
            rejected.append(in_native_names(outcome, names[index]))
        else:
            valid.append((index, outcome))
    return valid, rejected, names


# A batch is validated and planned on the event loop, this many records at a time, the loop
# serving others between slices. In a worker thread it would share the interpreter (the GIL) with
# the loop all the same, and slow down the clinic's batch that is applying meanwhile, whose every
# query's answer would wait for the thread to give way (every few milliseconds). Planning holds
# the clinic's lock: it goes in longer slices, so that other batches' validation delays it less.
SLICE = 100
PLAN_SLICE = 1000


async def _slices(records: Sequence[T]) -> AsyncIterator[tuple[int, Sequence[T]]]:
    """The records a slice at a time, with the batch index of each slice's first."""
    for start in range(0, len(records), SLICE):
        if start:
            await asyncio.sleep(0)
        yield start, records[start : start + SLICE]


async def _validated(
    raw_records: Sequence[Any], phone_region: str, adapter: Adapter | None = None
) -> tuple[list[tuple[int, PimsRecord]], list[Rejection], dict[int, dict[str, str]] | None]:
    """`validate_records`, or `validate_native_records` with an adapter, a slice at a time."""
    valid: list[tuple[int, PimsRecord]] = []
    rejected: list[Rejection] = []
    names: dict[int, dict[str, str]] = {}
    async for start, chunk in _slices(raw_records):
        if adapter is None:
            chunk_valid, chunk_rejected = validate_records(chunk, phone_region, start=start)
        else:
            chunk_valid, chunk_rejected, chunk_names = validate_native_records(
                adapter, chunk, phone_region, start=start
            )
            names.update(chunk_names)
        valid += chunk_valid
        rejected += chunk_rejected
    return valid, rejected, None if adapter is None else names


def in_native_names(rejection: Rejection, names: dict[str, str]) -> Rejection:
    errors = tuple(FieldError(native_field(names, e.field), e.message) for e in rejection.errors)
    return Rejection(rejection.index, rejection.kind, errors)


async def receive_native_records(
    uow: SyncUnitOfWork,
    clinic: Clinic,
    pims: str,
    raw_records: Sequence[Any],
    *,
    phone_region: str,
    snapshot_id: uuid.UUID | None = None,
) -> BatchResult:
    """A batch in the PIMS's own shapes (`domain.adapters`): mapped, then applied like any batch."""
    if pims != clinic.pims:
        raise WrongPims(pims, clinic.pims)
    valid, rejected, names = await _validated(raw_records, phone_region, ADAPTERS[pims])
    return await _apply(
        uow, clinic.clinic_id, raw_records, valid, rejected, pims=pims, names=names, snapshot_id=snapshot_id
    )


async def receive_records(
    uow: SyncUnitOfWork,
    clinic_id: str,
    raw_records: Sequence[dict[str, Any]],
    *,
    phone_region: str,
    pims: str,
    snapshot_id: uuid.UUID | None = None,
) -> BatchResult:
    """Validates each record on its own, applies the valid ones with their events, keeps the rest."""
    # Before the first query holds a connection.
    valid, rejected, _ = await _validated(raw_records, phone_region)
    return await _apply(uow, clinic_id, raw_records, valid, rejected, pims=pims, snapshot_id=snapshot_id)


async def _apply(
    uow: SyncUnitOfWork,
    clinic_id: str,
    raw_records: Sequence[Any],
    valid: list[tuple[int, PimsRecord]],
    rejected: list[Rejection],
    *,
    pims: str,
    names: dict[int, dict[str, str]] | None = None,
    source: str = "canonical",
    replacing: Collection[uuid.UUID] | None = None,
    snapshot_id: uuid.UUID | None = None,
) -> BatchResult:
    records = [r for _, r in valid]
    async with uow:
        store = uow.repositories.sync
        await store.lock_clinic(clinic_id)
        if snapshot_id is not None:
            snapshot = await uow.repositories.snapshots.get(clinic_id, snapshot_id, lock=True)
            if snapshot is None:
                raise SnapshotNotFound()
            if snapshot.completed_at is not None:
                raise SnapshotClosed()
            await uow.repositories.snapshots.add_page(
                snapshot_id,
                [r.client_id for r in records if isinstance(r, ContactRecord)],
                [r.patient_id for r in records if isinstance(r, PatientRecord)],
            )
        # A replay takes its records out of quarantine in the same transaction; if another replay
        # already took them, this one applies nothing.
        if replacing is not None and not await store.delete_rejections(clinic_id, ids=replacing):
            return BatchResult(accepted=0, rejected=[])
        refs = references(records)
        data = await store.load(
            clinic_id,
            client_ids=refs.client_ids,
            patient_ids=refs.patient_ids,
            program_codes=refs.program_codes,
            enrolments=refs.enrolments,
            records=refs.records,
        )
        plan = BatchPlan()
        for _ in plan_steps(valid, data, plan, every=PLAN_SLICE):
            await asyncio.sleep(0)
        if names is not None:
            plan.rejections = [in_native_names(r, names[r.index]) for r in plan.rejections]
        await store.apply(clinic_id, plan)
        trace = current_trace()
        await uow.publish_all(
            [
                Envelope.wrap(
                    p.event,
                    clinic_id=clinic_id,
                    client_id=p.client_id,
                    producer=PRODUCER,
                    trace=trace,
                    event_id=event_id,
                )
                for p, event_id in zip(plan.events, new_event_ids(len(plan.events)), strict=True)
            ]
        )
        rejected = sorted(rejected + plan.rejections, key=lambda r: r.index)
        await store.add_rejections(clinic_id, rejected, raw_records, source)
    # Only known kinds and PIMS names become labels: a connector must not be able to mint metric series.
    pims_label = pims if pims in PIMS_NAMES else "unknown"
    if plan.accepted:
        _accepted_records.add(plan.accepted, {"pims": pims_label})
    for rejection in rejected:
        kind = rejection.kind if rejection.kind in RECORD_KINDS else "unknown"
        _rejected_records.add(1, {"kind": kind, "pims": pims_label})
    return BatchResult(accepted=plan.accepted, rejected=rejected)


async def clinic_rejections(uow: SyncUnitOfWork, clinic_id: str, limit: int) -> list[StoredRejection]:
    """The clinic's rejected records, newest first."""
    async with uow:
        return await uow.repositories.sync.rejections(clinic_id, limit)


class RejectionNotFound(LookupError):
    def __init__(self) -> None:
        super().__init__("no such rejected record at this clinic")


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    accepted: int
    rejected: list[Rejection]


async def replay_rejections(
    uow: SyncUnitOfWork, clinic: Clinic, ids: Collection[uuid.UUID] | None, *, phone_region: str
) -> ReplayResult:
    """Run quarantined records through the batch path again (after a fix in the PIMS or in the portal):
    those that pass are applied and leave quarantine; those still bad stay, with their new reasons."""
    async with uow:
        stored = await uow.repositories.sync.rejections_by_id(clinic.clinic_id, ids)
    if ids is not None and not stored:
        raise RejectionNotFound()
    accepted, rejected = 0, []
    for source in sorted({r.source for r in stored}):
        group = [r for r in stored if r.source == source]
        raws = [json.loads(r.raw) for r in group]
        adapter = None if source == "canonical" else ADAPTERS[source]
        valid, bad, names = await _validated(raws, phone_region, adapter)
        result = await _apply(
            uow,
            clinic.clinic_id,
            raws,
            valid,
            bad,
            pims=clinic.pims,
            names=names,
            source=source,
            replacing=[r.id for r in group],
        )
        accepted += result.accepted
        rejected += result.rejected
    return ReplayResult(replayed=len(stored), accepted=accepted, rejected=rejected)


async def purge_rejections(
    uow: SyncUnitOfWork,
    clinic_id: str,
    *,
    ids: Collection[uuid.UUID] | None = None,
    before: datetime | None = None,
) -> int:
    """Delete quarantined records (these, those received before a time, or all); how many went."""
    async with uow:
        return await uow.repositories.sync.delete_rejections(clinic_id, ids=ids, before=before)


# --- nightly reconciliation (domain.snapshots) -----------------------------------------------


async def start_snapshot(uow: SyncUnitOfWork, clinic_id: str) -> Snapshot:
    async with uow:
        return await uow.repositories.snapshots.start(clinic_id)


async def complete_snapshot(
    uow: SyncUnitOfWork, clinic_id: str, snapshot_id: uuid.UUID, pages: int
) -> Snapshot:
    """The connector sent `pages` pages: the snapshot is complete only if all of them arrived."""
    async with uow:
        snapshots = uow.repositories.snapshots
        snapshot = await snapshots.get(clinic_id, snapshot_id, lock=True)
        if snapshot is None:
            raise SnapshotNotFound()
        if snapshot.completed_at is not None:
            raise SnapshotClosed()
        if snapshot.pages != pages:
            raise SnapshotIncomplete(pages, snapshot.pages)
        await snapshots.complete(snapshot_id, datetime.now(UTC))
        completed = await snapshots.get(clinic_id, snapshot_id)
    assert completed is not None
    return completed


@dataclass(frozen=True)
class Reconciliation:
    clinic_id: str
    snapshot_id: uuid.UUID
    contacts_removed: int
    patients_removed: int


async def reconcile(
    uow_factory: Callable[[], SyncUnitOfWork], *, clinic_id: str | None = None, now: datetime | None = None
) -> list[Reconciliation]:
    """Apply the removals of each clinic's newest complete snapshot: every clinic whose local time is
    in its nightly hour, or the one named (at once). Abandoned snapshots past their expiry go."""
    now = now or datetime.now(UTC)
    async with (uow := uow_factory()):
        pending = await uow.repositories.snapshots.to_reconcile(clinic_id)
        await uow.repositories.snapshots.expire(now - SNAPSHOT_EXPIRY)
    done = []
    for snapshot, timezone in pending:
        if clinic_id is None and not due_for_reconciliation(timezone, now):
            continue
        done.append(await _reconcile_one(uow_factory(), snapshot, now))
    return done


async def _reconcile_one(uow: SyncUnitOfWork, snapshot: Snapshot, now: datetime) -> Reconciliation:
    clinic_id = snapshot.clinic_id
    async with uow:
        await uow.repositories.sync.lock_clinic(clinic_id)
        contacts, patients = await uow.repositories.snapshots.missing(clinic_id, snapshot.id)
        gone = set(contacts)
        plan = BatchPlan(
            removed_contacts=contacts, removed_patients=[p for c, p in patients if c not in gone]
        )
        events = [
            Envelope.wrap(
                ClientRemoved(reason="missing_from_snapshot"),
                clinic_id=clinic_id,
                client_id=c,
                producer=PRODUCER,
            )
            for c in contacts
        ] + [
            Envelope.wrap(
                PatientRemoved(patient_id=p, reason="missing_from_snapshot"),
                clinic_id=clinic_id,
                client_id=c,
                producer=PRODUCER,
            )
            for c, p in patients
            if c not in gone
        ]
        await uow.repositories.sync.apply(clinic_id, plan)
        await uow.publish_all(events)
        await uow.repositories.snapshots.finish(clinic_id, snapshot.id, now)
    return Reconciliation(clinic_id, snapshot.id, len(contacts), len(plan.removed_patients))


# --- API keys --------------------------------------------------------------------------------

DEFAULT_KEY_OVERLAP = timedelta(hours=24)


async def rotate_api_key(
    uow: SyncUnitOfWork, clinic_id: str, overlap: timedelta = DEFAULT_KEY_OVERLAP
) -> str:
    """A new API key for the clinic (returned once); its other keys keep working for `overlap`, so the
    connector can switch without a gap."""
    api_key = generate_api_key()
    async with uow:
        if await uow.repositories.sync.clinic(clinic_id) is None:
            raise ApiKeyNotFound()
        await uow.repositories.sync.add_api_key(clinic_id, hash_api_key(api_key), overlap=overlap)
    return api_key


async def revoke_api_key(uow: SyncUnitOfWork, clinic_id: str, api_key_id: str) -> None:
    """The key stops working at once (a leaked key)."""
    async with uow:
        if not await uow.repositories.sync.revoke_api_key(clinic_id, api_key_id):
            raise ApiKeyNotFound()


async def api_keys(uow: SyncUnitOfWork, clinic_id: str) -> list[ApiKeyInfo]:
    async with uow:
        return await uow.repositories.sync.api_keys(clinic_id)


# --- erasure (docs/erasure.md) ---------------------------------------------------------------


async def erase_client(uow: SyncUnitOfWork, envelope: Envelope, event: ClientErasureRequested) -> bool:
    """Delete sync's copy of the client and confirm with ClientDataErased, in one transaction (the
    runtime's `erase`); False if this request was applied before.

    The PIMS still holds the client: if its connector sends them again, they are a new client to sync
    (their rows and versions are gone), published again in full, and those events occur after the
    erasure, so the other services apply them."""
    return await erase(
        uow,
        CONSUMER,
        envelope,
        event,
        lambda clinic_id, client_id: _erase(uow, clinic_id, client_id),
    )


async def _erase(uow: SyncUnitOfWork, clinic_id: str, client_id: str) -> int:
    erased = await uow.repositories.bookings.erase_client(clinic_id, client_id)
    return erased + await uow.repositories.sync.erase_client(clinic_id, client_id)
