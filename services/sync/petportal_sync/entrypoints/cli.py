"""sync's own CLI commands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Annotated, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from petportal_runtime.cli import Command
from petportal_runtime.phone import DEFAULT_REGION, normalise_phone
from petportal_schemas.envelope import ID_PATTERN
from petportal_schemas.pims import PimsName

from ..bootstrap import bootstrap
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
