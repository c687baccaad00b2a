"""Permanent erasure of a parent's portal data (docs/erasure.md).

1. `request_code`: a fresh code goes to the signed-in person (by the channel they sign in with).
2. `confirm`: with that code, an erasure of every client the person is, at every clinic: their
   sessions end at once, and `ClientErasureRequested` goes out for each client.
3. Every service that holds client data erases it and confirms (`ClientDataErased`); identity
   records each confirmation (`record_confirmation`) and the erasure is complete when all have.
4. `ask_again`: an erasure still waiting is asked for again, periodically, until it completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from petportal_runtime.auth import ClientRef, ParentPrincipal
from petportal_runtime.catalog import ERASING_SERVICES
from petportal_runtime.erasure import erase
from petportal_runtime.logging import get_logger
from petportal_schemas import ClientDataErased, ClientErasureRequested, Envelope

from ..domain.erasure import Erasure, ErasureSubject
from ..domain.sign_in import Attempt, Challenge, expiry, keyed_hash, new_code, new_secret
from .services import CONSUMER
from .sign_in import CodeLocked, InvalidCode, SignInPolicy, now
from .unit_of_work import IdentityUnitOfWork

log = get_logger(__name__)

# Sends the erasure code: (idempotency key, the client it goes through, channel, code, minutes).
SendErasureCode = Callable[[str, ClientRef, str, str, int], Awaitable[None]]


class UnknownErasure(LookupError):
    def __init__(self) -> None:
        super().__init__("no such erasure request")


def _request(erasure_id: uuid.UUID, ref: ClientRef, at: datetime) -> Envelope:
    return Envelope.wrap(
        ClientErasureRequested(erasure_id=erasure_id),
        clinic_id=ref.clinic_id,
        client_id=ref.client_id,
        producer=CONSUMER,
        occurred_at=at,
    )


async def request_code(
    uow: IdentityUnitOfWork, policy: SignInPolicy, send: SendErasureCode, *, parent: ParentPrincipal
) -> uuid.UUID:
    """A challenge whose code, sent to the person, confirms the erasure of all their clients."""
    clients = list(parent.memberships)
    code = new_code()
    async with uow:
        kind = await uow.repositories.sign_in.latest_kind(parent.sub) or "email"
        challenge = Challenge(
            identifier_digest=parent.sub,
            kind=kind,
            clients=clients,
            code_digest=keyed_hash(policy.pepper, code),
            link_digest=keyed_hash(policy.pepper, new_secret()),  # no link: the code only
            expires_at=expiry(now(), policy.code_ttl_seconds),
            purpose="erasure",
        )
        await uow.repositories.sign_in.add_challenge(challenge)
    minutes = max(1, int(policy.code_ttl_seconds // 60))
    await send(f"erasure-{challenge.id}", clients[0], "sms" if kind == "phone" else "email", code, minutes)
    return challenge.id


async def confirm(
    uow: IdentityUnitOfWork,
    policy: SignInPolicy,
    *,
    parent: ParentPrincipal,
    challenge_id: uuid.UUID,
    code: str,
    services: tuple[str, ...] = ERASING_SERVICES,
) -> Erasure:
    """Start the erasure the code confirms: `InvalidCode` (counted) or `CodeLocked` otherwise."""
    at = now()
    async with uow:
        store = uow.repositories.sign_in
        challenge = await store.challenge_for_update(challenge_id=challenge_id, purpose="erasure")
        if challenge is None or challenge.identifier_digest != parent.sub:
            raise InvalidCode()
        outcome = challenge.try_code(keyed_hash(policy.pepper, code), at, policy.max_attempts)
        await store.save_challenge(challenge)
        if outcome is Attempt.OK:
            erasure = Erasure.new(challenge.clients, services, at)
            await uow.repositories.erasures.add(erasure)
            await store.revoke(at, person=parent.sub)
            for ref in challenge.clients:
                await uow.publish(_request(erasure.id, ref, at))
            log.info("erasure requested", erasure_id=str(erasure.id), clients=len(challenge.clients))
            return erasure
    if outcome is Attempt.LOCKED:
        raise CodeLocked()
    raise InvalidCode()


async def status(uow: IdentityUnitOfWork, erasure_id: uuid.UUID) -> Erasure:
    async with uow:
        erasure = await uow.repositories.erasures.get(erasure_id)
    if erasure is None:
        raise UnknownErasure()
    return erasure


async def for_clinic(uow: IdentityUnitOfWork, clinic_id: str, limit: int = 100) -> list[ErasureSubject]:
    async with uow:
        return await uow.repositories.erasures.for_clinic(clinic_id, limit)


async def erase_own_data(uow: IdentityUnitOfWork, envelope: Envelope, event: ClientErasureRequested) -> bool:
    """identity's part: the contact record, the account, challenges and refresh tokens."""

    async def delete_data(clinic_id: str, client_id: str) -> int:
        return await uow.repositories.erasures.erase_client(clinic_id, client_id)

    return await erase(uow, CONSUMER, envelope, event, delete_data)


async def record_confirmation(uow: IdentityUnitOfWork, envelope: Envelope, event: ClientDataErased) -> bool:
    """True if this confirmation completed the erasure."""
    if envelope.client_id is None:
        raise ValueError("ClientDataErased without client_id")
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        completed = await uow.repositories.erasures.confirm(
            event.erasure_id, envelope.clinic_id, envelope.client_id, event.service, envelope.occurred_at
        )
    if completed:
        log.info("erasure complete", erasure_id=str(event.erasure_id))
    return completed


async def ask_again(uow: IdentityUnitOfWork, *, after: timedelta, limit: int = 100) -> int:
    """Send the request again for the clients of erasures still waiting `after` their last request;
    how many requests went out."""
    at = now()
    async with uow:
        due = await uow.repositories.erasures.due_again(at - after, at, limit)
        for erasure_id, clinic_id, client_id in due:
            await uow.publish(_request(erasure_id, ClientRef(clinic_id=clinic_id, client_id=client_id), at))
    if due:
        log.info("erasure requests sent again", count=len(due))
    return len(due)


async def keep_asking(
    unit_of_work: Callable[[], IdentityUnitOfWork], every: timedelta, stop: asyncio.Event
) -> None:
    """The background loop of `ask_again` (on every replica: each takes different erasures)."""
    while not stop.is_set():
        try:
            await ask_again(unit_of_work(), after=every)
        except Exception:  # asked again at the next round
            log.exception("asking for erasures again failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(1.0, every.total_seconds() / 5))
