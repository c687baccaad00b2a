"""identity's own CLI commands."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import EmailStr, TypeAdapter, ValidationError

from petportal_runtime.cli import Command
from petportal_runtime.ratelimit import MemoryStorage, rate_limit_storage
from petportal_runtime.service import ServiceRuntime
from petportal_schemas.envelope import ID_PATTERN

from ..adapters.ratelimit import SignInLimits
from ..adapters.repository import sql_repositories
from ..bootstrap import sign_in_limits
from ..domain.model import normalise_email
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
        user = await services.create_staff(
            runtime.unit_of_work(sql_repositories), args.clinic_id, email, password
        )
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


@asynccontextmanager
async def _sign_in_limits(settings: IdentitySettings) -> AsyncIterator[tuple[ServiceRuntime, SignInLimits]]:
    runtime = ServiceRuntime(settings, broker=False)
    try:
        yield runtime, sign_in_limits(rate_limit_storage(runtime), settings)[0]
    finally:
        if runtime.engine is not None:
            await runtime.engine.dispose()


# The only storage a separate process cannot reach: each identity process has its own.
IN_MEMORY = (
    "the sign-in lock is kept in each identity process (RATE_LIMIT_STORAGE_URL=memory://); "
    "restart identity to clear it"
)


async def unlock_staff(args: argparse.Namespace, settings: IdentitySettings | None = None) -> int:
    settings = settings or IdentitySettings()
    # Any email, not only a staff user's: unknown emails are locked the same way.
    email = normalise_email(args.email)
    async with _sign_in_limits(settings) as (_, limits):
        if isinstance(limits.storage, MemoryStorage):
            print(f"unlock-staff: {IN_MEMORY}", file=sys.stderr)
            return 1
        await limits.unlock(email)
    print("sign-in unlocked for that email")
    return 0


async def reset_staff_password(args: argparse.Namespace, settings: IdentitySettings | None = None) -> int:
    if not re.fullmatch(ID_PATTERN, args.clinic_id):
        print(f"reset-staff-password: invalid clinic id {args.clinic_id!r}", file=sys.stderr)
        return 2
    settings = settings or IdentitySettings()
    email = normalise_email(args.email)
    password = sys.stdin.readline().rstrip("\r\n")
    async with _sign_in_limits(settings) as (runtime, limits):
        try:
            user = await services.reset_staff_password(
                runtime.unit_of_work(sql_repositories), args.clinic_id, email, password
            )
        except WeakPasswordError as exc:
            print(f"reset-staff-password: {exc}", file=sys.stderr)
            return 1
        if user is None:
            print(
                f"reset-staff-password: no staff user with that email at clinic {args.clinic_id}",
                file=sys.stderr,
            )
            return 1
        unlocked = not isinstance(limits.storage, MemoryStorage)
        if unlocked:
            await limits.unlock(email)
        else:
            print(f"reset-staff-password: {IN_MEMORY}", file=sys.stderr)
    print(
        f"password reset for staff user {user.id} at clinic {user.clinic_id}"
        + ("; sign-in unlocked" if unlocked else "")
    )
    return 0


def _email_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True)


def _reset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clinic-id", required=True)
    parser.add_argument("--email", required=True)


UNLOCK_STAFF = Command(
    name="unlock-staff",
    help="clear the sign-in lock of an email (five failed sign-ins lock it for a minute)",
    run=unlock_staff,
    arguments=_email_argument,
)

RESET_STAFF_PASSWORD = Command(
    name="reset-staff-password",
    help="set a staff user's password (read from the first line of standard input) and clear their "
    "sign-in lock",
    run=reset_staff_password,
    arguments=_reset_arguments,
)
