"""sync's own CLI commands."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from petportal_runtime.cli import Command
from petportal_runtime.phone import DEFAULT_REGION, normalise_phone
from petportal_schemas.envelope import ID_PATTERN
from petportal_schemas.pims import PimsName

from ..bootstrap import bootstrap
from ..domain.apikeys import ApiKeyNotFound, hash_api_key, key_id
from ..domain.clinics import ClinicExistsError
from ..service_layer import services
from ..settings import SyncSettings


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class NewClinic(BaseModel):
    clinic_id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    pims: PimsName
    sms_number: Annotated[str, AfterValidator(lambda v: normalise_phone(v, DEFAULT_REGION))]
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clinic-id", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--pims", required=True, choices=get_args(PimsName))
    parser.add_argument("--sms-number", required=True)
    parser.add_argument("--timezone", default="UTC")


async def create_clinic(args: argparse.Namespace, settings: SyncSettings | None = None) -> int:
    try:
        clinic = NewClinic(
            clinic_id=args.clinic_id,
            name=args.name.strip(),
            pims=args.pims,
            sms_number=args.sms_number,
            timezone=args.timezone,
        )
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            print(f"create-clinic: {field}: {err['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    sync = bootstrap(settings or SyncSettings(), broker=False)
    try:
        # ClinicRegistered goes out through the outbox: the running sync service relays it.
        api_key = await services.register_clinic(sync.unit_of_work(), **clinic.model_dump())
    except ClinicExistsError as exc:
        print(f"create-clinic: {exc}", file=sys.stderr)
        return 1
    finally:
        if sync.runtime.engine is not None:
            await sync.runtime.engine.dispose()
    print(json.dumps({"clinic_id": clinic.clinic_id, "api_key": api_key}))
    return 0


CREATE_CLINIC = Command(
    name="create-clinic",
    help="register a clinic; prints its id and API key (shown once) as JSON",
    run=create_clinic,
    arguments=_arguments,
)


def _clinic_argument(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--clinic-id", required=required)


async def _with_sync(settings: SyncSettings | None, run: Any) -> int:
    sync = bootstrap(settings or SyncSettings(), broker=False)
    try:
        return int(await run(sync))
    finally:
        if sync.runtime.engine is not None:
            await sync.runtime.engine.dispose()


async def reconcile(args: argparse.Namespace, settings: SyncSettings | None = None) -> int:
    """Apply the removals of complete snapshots: of clinics in their nightly hour, or of one at once."""

    async def run(sync: Any) -> int:
        done = await services.reconcile(sync.unit_of_work, clinic_id=args.clinic_id)
        for r in done:
            print(
                json.dumps(
                    {
                        "clinic_id": r.clinic_id,
                        "snapshot_id": str(r.snapshot_id),
                        "contacts_removed": r.contacts_removed,
                        "patients_removed": r.patients_removed,
                    }
                )
            )
        if args.clinic_id is not None and not done:
            print(f"reconcile: no complete snapshot to reconcile for {args.clinic_id}", file=sys.stderr)
        return 0

    return await _with_sync(settings, run)


async def _clinic(sync: Any, clinic_id: str) -> Any:
    async with sync.unit_of_work() as uow:
        return await uow.repositories.sync.clinic(clinic_id)


async def replay_rejections(args: argparse.Namespace, settings: SyncSettings | None = None) -> int:
    async def run(sync: Any) -> int:
        clinic = await _clinic(sync, args.clinic_id)
        if clinic is None:
            print(f"replay-rejections: no clinic {args.clinic_id}", file=sys.stderr)
            return 1
        ids = [uuid.UUID(i) for i in args.id] if args.id else None
        try:
            result = await services.replay_rejections(
                sync.unit_of_work(), clinic, ids, phone_region=sync.settings.default_phone_region
            )
        except services.RejectionNotFound as exc:
            print(f"replay-rejections: {exc}", file=sys.stderr)
            return 1
        print(
            json.dumps(
                {
                    "replayed": result.replayed,
                    "accepted": result.accepted,
                    "still_rejected": len(result.rejected),
                }
            )
        )
        return 0

    return await _with_sync(settings, run)


async def purge_rejections(args: argparse.Namespace, settings: SyncSettings | None = None) -> int:
    async def run(sync: Any) -> int:
        before = (
            datetime.now(UTC) - timedelta(days=args.older_than_days)
            if args.older_than_days is not None
            else None
        )
        purged = await services.purge_rejections(sync.unit_of_work(), args.clinic_id, before=before)
        print(json.dumps({"purged": purged}))
        return 0

    return await _with_sync(settings, run)


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    _clinic_argument(parser)
    parser.add_argument(
        "--id", action="append", type=uuid.UUID, help="a rejection to replay (repeatable); default: all"
    )


def _purge_arguments(parser: argparse.ArgumentParser) -> None:
    _clinic_argument(parser)
    parser.add_argument("--older-than-days", type=float, default=None, help="only those older; default: all")


RECONCILE = Command(
    name="reconcile",
    help="apply complete snapshots' removals: clinics in their nightly hour (run hourly), or one now",
    run=reconcile,
    arguments=lambda parser: _clinic_argument(parser, required=False),
)
REPLAY_REJECTIONS = Command(
    name="replay-rejections",
    help="replay a clinic's quarantined records after a fix; those still bad stay with their new reasons",
    run=replay_rejections,
    arguments=_replay_arguments,
)
PURGE_REJECTIONS = Command(
    name="purge-rejections",
    help="delete a clinic's quarantined records",
    run=purge_rejections,
    arguments=_purge_arguments,
)


async def rotate_api_key(args: argparse.Namespace, settings: SyncSettings | None = None) -> int:
    async def run(sync: Any) -> int:
        try:
            api_key = await services.rotate_api_key(
                sync.unit_of_work(), args.clinic_id, timedelta(hours=args.overlap_hours)
            )
        except ApiKeyNotFound:
            print(f"rotate-api-key: no clinic {args.clinic_id}", file=sys.stderr)
            return 1
        print(
            json.dumps(
                {"clinic_id": args.clinic_id, "api_key": api_key, "key_id": key_id(hash_api_key(api_key))}
            )
        )
        return 0

    return await _with_sync(settings, run)


async def revoke_api_key(args: argparse.Namespace, settings: SyncSettings | None = None) -> int:
    async def run(sync: Any) -> int:
        try:
            await services.revoke_api_key(sync.unit_of_work(), args.clinic_id, args.key_id)
        except ApiKeyNotFound as exc:
            print(f"revoke-api-key: {exc}", file=sys.stderr)
            return 1
        return 0

    return await _with_sync(settings, run)


def _rotate_arguments(parser: argparse.ArgumentParser) -> None:
    _clinic_argument(parser)
    parser.add_argument("--overlap-hours", type=float, default=24, help="how long the old keys keep working")


def _revoke_arguments(parser: argparse.ArgumentParser) -> None:
    _clinic_argument(parser)
    parser.add_argument("--key-id", required=True, help="the key's id (GET /pims/v1/api-keys)")


ROTATE_API_KEY = Command(
    name="rotate-api-key",
    help="a new API key for a clinic (printed once); the old ones keep working for the overlap",
    run=rotate_api_key,
    arguments=_rotate_arguments,
)
REVOKE_API_KEY = Command(
    name="revoke-api-key",
    help="stop one of a clinic's API keys at once",
    run=revoke_api_key,
    arguments=_revoke_arguments,
)
