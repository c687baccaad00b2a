"""identity's own CLI commands."""

from __future__ import annotations

import argparse
import re
import sys

from pydantic import EmailStr, TypeAdapter, ValidationError

from petportal_runtime.cli import Command
from petportal_runtime.service import ServiceRuntime
from petportal_schemas.envelope import ID_PATTERN

from ..domain.passwords import WeakPasswordError
from ..service_layer import services
from ..service_layer.services import StaffExistsError
from ..settings import IdentitySettings

_email = TypeAdapter(EmailStr)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clinic-id", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument(
        "--password",
        help="the initial password; without it, the first line of standard input is read (which keeps "
        "it out of the process list and the shell's history)",
    )


async def create_staff(args: argparse.Namespace, settings: IdentitySettings | None = None) -> int:
    if not re.fullmatch(ID_PATTERN, args.clinic_id):
        print(f"create-staff: invalid clinic id {args.clinic_id!r}", file=sys.stderr)
        return 2
    try:
        email = _email.validate_python(args.email)
    except ValidationError:
        print("create-staff: invalid email address", file=sys.stderr)
        return 2
    password = args.password if args.password is not None else sys.stdin.readline().rstrip("\r\n")
    runtime = ServiceRuntime(settings or IdentitySettings(), broker=False)
    try:
        async with runtime.transaction() as session:
            user = await services.create_staff(session, args.clinic_id, email, password)
    except (StaffExistsError, WeakPasswordError) as exc:
        print(f"create-staff: {exc}", file=sys.stderr)
        return 1
    finally:
        if runtime.engine is not None:
            await runtime.engine.dispose()
    print(f"created staff user {user.id} at clinic {user.clinic_id}")
    return 0


CREATE_STAFF = Command(
    name="create-staff",
    help="create a clinic staff user who can sign in at /clinic/v1/auth/token",
    run=create_staff,
    arguments=_arguments,
)
