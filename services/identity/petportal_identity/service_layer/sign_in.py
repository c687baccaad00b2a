"""Passwordless sign-in for parents, and their sessions (docs/sign-in.md).

1. `request_code`: the email or mobile number on their clinic's contact record. Always the same answer
   (a challenge id), whether or not it matched anyone; when it did, a code and a link go out through
   notify, to that address, in the background (so the answer takes as long either way).
2. `verify_code` / `verify_link`: tokens for every clinic where that identifier is on file: an access
   token at one of them (the first, or the one asked for) listing all, and a refresh token.
3. `refresh`: a new access token (at another of the person's clinics if asked) and a new refresh
   token; the old one is spent, and spending it again revokes the family. `sign_out`,
   `sign_out_everywhere` revoke.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from petportal_runtime.auth import ClientRef
from petportal_runtime.logging import get_logger

from ..domain.sign_in import (
    Attempt,
    Challenge,
    Identifier,
    RefreshOutcome,
    RefreshToken,
    check_refresh,
    expiry,
    keyed_hash,
    new_code,
    new_secret,
)
from .services import IssuedToken, TokenIssuer, TooManySignInAttempts
from .unit_of_work import IdentityUnitOfWork, SignInLimiter

log = get_logger(__name__)


class InvalidCode(Exception):
    """A wrong, expired or already used code or link, or an unknown challenge: one answer for all."""

    def __init__(self) -> None:
        super().__init__("that code or link is not valid (it may have expired): request a new one")


class CodeLocked(Exception):
    def __init__(self) -> None:
        super().__init__("too many wrong codes: request a new one")


class InvalidRefreshToken(Exception):
    def __init__(self) -> None:
        super().__init__("sign in again")


class NotYourClinic(Exception):
    def __init__(self) -> None:
        super().__init__("you are not a client of that clinic")


@dataclass(frozen=True)
class SignInPolicy:
    pepper: bytes
    code_ttl_seconds: float = 600
    max_attempts: int = 5
    refresh_ttl_seconds: float = 30 * 86_400
    portal_url: str = "http://127.0.0.1:8080"
    phone_region: str = "US"


# Sends a code: (idempotency key, the client it goes through, channel, code, link, minutes).
SendCode = Callable[[str, ClientRef, str, str, str, int], Awaitable[None]]


@dataclass(frozen=True)
class SignedIn:
    access: IssuedToken
    refresh_token: str
    clients: list[ClientRef]
    selected: ClientRef


def now() -> datetime:
    return datetime.now(UTC)


async def request_code(
    uow: IdentityUnitOfWork,
    limits: SignInLimiter,
    policy: SignInPolicy,
    send: SendCode,
    *,
    identifier: str,
    clinic_id: str | None,
    client_ip: str,
) -> uuid.UUID:
    """A challenge id, the same way for a known and an unknown identifier. `InvalidIdentifier` for
    something that is neither an email nor a phone number; `TooManySignInAttempts` past the limits
    (counted per identifier whether or not anyone has it, and per client address)."""
    parsed = Identifier.parse(identifier, policy.phone_region)
    digest = parsed.digest(policy.pepper)
    retry_after = await limits.hit(digest, client_ip)
    if retry_after is not None:
        raise TooManySignInAttempts(retry_after)
    code, link_secret = new_code(), new_secret()
    async with uow:
        clients = await uow.repositories.sign_in.clients_with(parsed, clinic_id)
        challenge = Challenge(
            identifier_digest=digest,
            kind=parsed.kind,
            clients=clients,
            code_digest=keyed_hash(policy.pepper, code),
            link_digest=keyed_hash(policy.pepper, link_secret),
            expires_at=expiry(now(), policy.code_ttl_seconds),
        )
        await uow.repositories.sign_in.add_challenge(challenge)
    if clients:
        link = f"{policy.portal_url.rstrip('/')}/sign-in/link#token={link_secret}"
        minutes = max(1, int(policy.code_ttl_seconds // 60))
        channel = "sms" if parsed.kind == "phone" else "email"
        await send(f"sign-in-{challenge.id}", clients[0], channel, code, link, minutes)
    log.info("sign-in code requested", matched_clinics=len({c.clinic_id for c in clients}))
    return challenge.id


async def verify_code(
    uow: IdentityUnitOfWork,
    tokens: TokenIssuer,
    policy: SignInPolicy,
    *,
    challenge_id: uuid.UUID,
    code: str,
    clinic_id: str | None = None,
) -> SignedIn:
    at = now()
    async with uow:
        store = uow.repositories.sign_in
        challenge = await store.challenge_for_update(challenge_id=challenge_id)
        if challenge is None:
            raise InvalidCode()
        outcome = challenge.try_code(keyed_hash(policy.pepper, code), at, policy.max_attempts)
        await store.save_challenge(challenge)
        if outcome is Attempt.OK:
            return await _session(uow, tokens, policy, challenge, clinic_id, at)
    # The attempt is counted (committed) before it is refused.
    if outcome is Attempt.LOCKED:
        raise CodeLocked()
    raise InvalidCode()


async def verify_link(
    uow: IdentityUnitOfWork,
    tokens: TokenIssuer,
    policy: SignInPolicy,
    *,
    token: str,
    clinic_id: str | None = None,
) -> SignedIn:
    """The magic link signs in once; after that it is spent (the portal then asks for the identifier)."""
    at = now()
    async with uow:
        store = uow.repositories.sign_in
        challenge = await store.challenge_for_update(link_digest=keyed_hash(policy.pepper, token))
        if challenge is None or challenge.try_link(at) is not Attempt.OK:
            raise InvalidCode()
        await store.save_challenge(challenge)
        return await _session(uow, tokens, policy, challenge, clinic_id, at)


def _select(clients: list[ClientRef], clinic_id: str | None) -> ClientRef:
    if clinic_id is None:
        return clients[0]
    for ref in clients:
        if ref.clinic_id == clinic_id:
            return ref
    raise NotYourClinic()


async def _session(
    uow: IdentityUnitOfWork,
    tokens: TokenIssuer,
    policy: SignInPolicy,
    challenge: Challenge,
    clinic_id: str | None,
    at: datetime,
) -> SignedIn:
    """Open the accounts, start a refresh-token family, sign an access token (in the open unit of work)."""
    selected = _select(challenge.clients, clinic_id)
    for ref in challenge.clients:
        await uow.repositories.identity.ensure_account(ref.clinic_id, ref.client_id, "sign_in")
    secret = new_secret()
    await uow.repositories.sign_in.add_refresh_token(
        RefreshToken(
            digest=keyed_hash(policy.pepper, secret),
            family_id=uuid.uuid4(),
            person=challenge.identifier_digest,
            clients=challenge.clients,
            selected=selected,
            expires_at=expiry(at, policy.refresh_ttl_seconds),
        )
    )
    access = tokens.person(challenge.identifier_digest, selected, challenge.clients)
    return SignedIn(access, secret, challenge.clients, selected)


async def refresh(
    uow: IdentityUnitOfWork,
    tokens: TokenIssuer,
    policy: SignInPolicy,
    *,
    refresh_token: str,
    clinic_id: str | None,
) -> SignedIn:
    at = now()
    revoked_family = False
    async with uow:
        store = uow.repositories.sign_in
        current = await store.refresh_token_for_update(keyed_hash(policy.pepper, refresh_token))
        outcome = check_refresh(current, at)
        if outcome is RefreshOutcome.REUSED and current is not None:
            # Someone holds a copy of a spent token: end the whole session, theirs and ours.
            await store.revoke(at, family_id=current.family_id)
            revoked_family = True
        elif outcome is RefreshOutcome.OK and current is not None:
            clients = await store.still_clients(current.clients)
            if clients:
                await store.mark_used(current.digest, at)
                if clinic_id is not None:
                    selected = _select(clients, clinic_id)
                else:
                    selected = current.selected if current.selected in clients else clients[0]
                secret = new_secret()
                await store.add_refresh_token(
                    RefreshToken(
                        digest=keyed_hash(policy.pepper, secret),
                        family_id=current.family_id,
                        person=current.person,
                        clients=clients,
                        selected=selected,
                        expires_at=current.expires_at,  # a family lives as long as its first token
                    )
                )
                return SignedIn(tokens.person(current.person, selected, clients), secret, clients, selected)
            await store.revoke(at, family_id=current.family_id)  # no clinic has them on file any more
    if revoked_family:
        log.warning("refresh token reused: family revoked")
    raise InvalidRefreshToken()


async def sign_out(uow: IdentityUnitOfWork, policy: SignInPolicy, *, refresh_token: str) -> None:
    """Ends this session (its refresh-token family); an unknown token changes nothing."""
    async with uow:
        store = uow.repositories.sign_in
        current = await store.refresh_token_for_update(keyed_hash(policy.pepper, refresh_token))
        if current is not None:
            await store.revoke(now(), family_id=current.family_id)


async def sign_out_everywhere(uow: IdentityUnitOfWork, *, person: str) -> int:
    """Ends every session of the person (the access tokens already issued expire on their own)."""
    async with uow:
        return await uow.repositories.sign_in.revoke(now(), person=person)


@dataclass(frozen=True)
class Prefill:
    identifier: str | None
    clinic_id: str


async def reminder_links(
    uow: IdentityUnitOfWork, policy: SignInPolicy, clients: list[ClientRef], ttl_days: int
) -> list[tuple[ClientRef, str | None]]:
    """Links for reminders (notify asks for them; no secret is shared): each signs its one client in,
    once, until it expires; spent, it only pre-fills their identifier. None for an unknown client."""
    made: list[tuple[ClientRef, str | None]] = []
    async with uow:
        for ref in clients:
            contact = await uow.repositories.identity.contact(ref.clinic_id, ref.client_id)
            if contact is None:
                made.append((ref, None))
                continue
            identifier = contact.email or contact.phone
            kind: Literal["email", "phone"] = "email" if contact.email else "phone"
            person = Identifier(kind, (identifier or f"{ref.clinic_id}/{ref.client_id}").lower()).digest(
                policy.pepper
            )
            secret = new_secret()
            await uow.repositories.sign_in.add_challenge(
                Challenge(
                    identifier_digest=person,
                    kind=kind,
                    clients=[ref],
                    code_digest=keyed_hash(policy.pepper, new_secret()),  # no code: the link only
                    link_digest=keyed_hash(policy.pepper, secret),
                    expires_at=expiry(now(), ttl_days * 86_400),
                    prefill=identifier,
                )
            )
            made.append((ref, f"{policy.portal_url.rstrip('/')}/sign-in/link#token={secret}"))
    return made


async def link_prefill(uow: IdentityUnitOfWork, policy: SignInPolicy, *, token: str) -> Prefill:
    """What a spent (or expired) reminder link pre-fills on the sign-in screen; `InvalidCode` for a
    link that is not one."""
    async with uow:
        challenge = await uow.repositories.sign_in.challenge_by_link(keyed_hash(policy.pepper, token))
    if challenge is None or not challenge.clients or challenge.prefill is None:
        raise InvalidCode()
    return Prefill(challenge.prefill, challenge.clients[0].clinic_id)
