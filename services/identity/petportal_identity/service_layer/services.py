"""identity's use cases: staff users and their sign-in, parent accounts and contacts, clinics. Each
takes a unit of work (one transaction) and never a session."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta

from petportal_runtime.auth import ClientRef, ParentPrincipal, StaffPrincipal, sign_token
from petportal_schemas import Envelope

from ..domain import passwords
from ..domain.keys import SigningKey
from ..domain.model import INVALID_CREDENTIALS, AccountOrigin, Contact, StaffUser, normalise_email
from .unit_of_work import IdentityUnitOfWork, SignInLimiter

CONSUMER = "identity"


class StaffExistsError(Exception):
    pass


class AmbiguousStaffError(Exception):
    """The email and password match staff users at several clinics: the clinic must be given."""

    def __init__(self) -> None:
        super().__init__("this email belongs to several clinics: give clinic_id")


class InvalidCredentials(Exception):
    """An unknown email or a wrong password (one message for both: no account enumeration)."""

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


class TooManySignInAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many sign-in attempts; try again later")
        self.retry_after = retry_after


class UnknownClient(LookupError):
    def __init__(self, clinic_id: str, client_id: str) -> None:
        super().__init__(f"no client {client_id} at clinic {clinic_id}")


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True)
class TokenIssuer:
    key: SigningKey
    parent_ttl: timedelta
    staff_ttl: timedelta

    def parent(self, account_id: uuid.UUID, clinic_id: str, client_id: str) -> IssuedToken:
        principal = ParentPrincipal(
            sub=str(account_id), role="parent", clinic_id=clinic_id, client_id=client_id
        )
        token = sign_token(self.key.private_key, self.key.kid, principal, self.parent_ttl)
        return IssuedToken(token, int(self.parent_ttl.total_seconds()))

    def person(self, person: str, selected: ClientRef, clients: list[ClientRef]) -> IssuedToken:
        """A signed-in parent's token: acting at `selected`, a client at every one of `clients`."""
        principal = ParentPrincipal(
            sub=person,
            role="parent",
            clinic_id=selected.clinic_id,
            client_id=selected.client_id,
            clients=tuple(clients),
        )
        token = sign_token(self.key.private_key, self.key.kid, principal, self.parent_ttl)
        return IssuedToken(token, int(self.parent_ttl.total_seconds()))

    def staff(self, user: StaffUser) -> IssuedToken:
        principal = StaffPrincipal(sub=str(user.id), role="staff", clinic_id=user.clinic_id)
        token = sign_token(self.key.private_key, self.key.kid, principal, self.staff_ttl)
        return IssuedToken(token, int(self.staff_ttl.total_seconds()))


# --- staff --------------------------------------------------------------------------------------


async def create_staff(uow: IdentityUnitOfWork, clinic_id: str, email: str, password: str) -> StaffUser:
    """`WeakPasswordError` for a weak password, `StaffExistsError` if the email is taken there."""
    passwords.check_strength(password)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    user = StaffUser(clinic_id=clinic_id, email=normalise_email(email), password_hash=password_hash)
    async with uow:
        if not await uow.repositories.identity.add_staff(user):
            raise StaffExistsError(f"a staff user with that email already exists at clinic {clinic_id}")
    return user


async def reset_staff_password(
    uow: IdentityUnitOfWork, clinic_id: str, email: str, password: str
) -> StaffUser | None:
    """None when no staff user has that email at that clinic."""
    passwords.check_strength(password)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    async with uow:
        return await uow.repositories.identity.set_staff_password(
            clinic_id, normalise_email(email), password_hash
        )


async def find_staff_candidates(
    uow: IdentityUnitOfWork, email: str, clinic_id: str | None = None
) -> list[StaffUser]:
    async with uow:
        return await uow.repositories.identity.staff_by_email(normalise_email(email), clinic_id)


async def verify_staff_password(candidates: list[StaffUser], password: str) -> StaffUser | None:
    """The one candidate whose password matches. Runs scrypt off the event loop, and once against a
    dummy hash when there is no candidate so an unknown email costs as much as a wrong password."""
    if not candidates:
        await asyncio.to_thread(passwords.verify_password, password, passwords.DUMMY_HASH)
        return None
    matches = [
        user
        for user in candidates
        if await asyncio.to_thread(passwords.verify_password, password, user.password_hash)
    ]
    if len(matches) > 1:
        raise AmbiguousStaffError()
    return matches[0] if matches else None


async def staff_sign_in(
    uow: IdentityUnitOfWork,
    limits: SignInLimiter,
    tokens: TokenIssuer,
    *,
    email: str,
    password: str,
    clinic_id: str | None,
    client_ip: str,
) -> IssuedToken:
    """A staff token for the right email and password. Every attempt counts against the address and
    the email (`TooManySignInAttempts` past the limits); a success clears the email's count (the
    lockout counts failed attempts in a row). `InvalidCredentials` alike for an unknown email and a
    wrong password; `AmbiguousStaffError` when several clinics match and none is given."""
    email = normalise_email(email)
    retry_after = await limits.hit(email, client_ip)
    if retry_after is not None:
        raise TooManySignInAttempts(int(retry_after))
    candidates = await find_staff_candidates(uow, email, clinic_id)
    user = await verify_staff_password(candidates, password)  # outside the transaction: scrypt is slow
    if user is None:
        raise InvalidCredentials()
    await limits.unlock(email)
    return tokens.staff(user)


# --- parents ------------------------------------------------------------------------------------


async def dev_token(
    uow: IdentityUnitOfWork, tokens: TokenIssuer, clinic_id: str, client_id: str
) -> IssuedToken:
    """A parent token for any known client (opening their account), without signing in."""
    async with uow:
        store = uow.repositories.identity
        if await store.contact(clinic_id, client_id) is None:
            raise UnknownClient(clinic_id, client_id)
        account_id = await store.ensure_account(clinic_id, client_id, "dev")
    return tokens.parent(account_id, clinic_id, client_id)


async def contact_details(uow: IdentityUnitOfWork, clinic_id: str, client_id: str) -> Contact:
    """The client's contact record as the clinic holds it; `UnknownClient` if there is none."""
    async with uow:
        contact = await uow.repositories.identity.contact(clinic_id, client_id)
    if contact is None:
        raise UnknownClient(clinic_id, client_id)
    return contact


# --- events consumed ----------------------------------------------------------------------------


async def record_contact(uow: IdentityUnitOfWork, envelope: Envelope, contact: Contact) -> bool:
    """Keep the clinic's contact record, once per event; an older event never overwrites a newer one."""
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.identity.upsert_contact(contact, envelope.occurred_at)
    return True


async def forget_contact(uow: IdentityUnitOfWork, envelope: Envelope, client_id: str) -> bool:
    """Drop the clinic's contact record of the client, once per event."""
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.identity.remove_contact(envelope.clinic_id, client_id)
    return True


async def open_account(
    uow: IdentityUnitOfWork, envelope: Envelope, client_id: str, origin: AccountOrigin
) -> bool:
    """Open the client's account (if they have none), once per event."""
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.identity.ensure_account(envelope.clinic_id, client_id, origin)
    return True


async def record_clinic(uow: IdentityUnitOfWork, envelope: Envelope, name: str) -> bool:
    """Keep the clinic's name, once per event."""
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.identity.upsert_clinic(envelope.clinic_id, name, envelope.occurred_at)
    return True
