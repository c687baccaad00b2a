"""identity's use cases on the in-memory unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_identity.adapters.ratelimit import SignInLimits
from petportal_identity.domain import passwords
from petportal_identity.domain.keys import SigningKey
from petportal_identity.domain.model import Contact, StaffUser
from petportal_identity.service_layer import services
from petportal_runtime.auth import TokenVerifier
from petportal_runtime.ratelimit import MemoryStorage
from petportal_schemas import ClientRemoved, ClientUpserted, ClinicRegistered, Envelope, ReminderSent

pytestmark = pytest.mark.unit

FAST = passwords.ScryptParams(n=2**10)
KEY = SigningKey.generate()
TOKENS = services.TokenIssuer(KEY, parent_ttl=timedelta(hours=1), staff_ttl=timedelta(hours=8))
AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ADA = Contact("clinic-1", "C-1", "Ada", "Lovelace", "ada@example.com", "+15555550123")


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    real = passwords.hash_password
    monkeypatch.setattr(passwords, "hash_password", lambda password: real(password, FAST))


@pytest.fixture
def limits() -> SignInLimits:
    return SignInLimits(MemoryStorage(), per_email="5/minute", per_ip="20/minute")


async def sign_in(uow: Any, limits: SignInLimits, email: str, password: str, **extra: Any) -> Any:
    return await services.staff_sign_in(
        uow,
        limits,
        TOKENS,
        email=email,
        password=password,
        clinic_id=extra.get("clinic_id"),
        client_ip=extra.get("client_ip", "10.0.0.1"),
    )


# --- staff --------------------------------------------------------------------------------------


async def test_a_staff_user_is_created_with_a_hashed_password_once_per_clinic_and_email(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    user = await services.create_staff(uow, "clinic-1", " Vet@Maple.example ", "a good password")
    assert (user.clinic_id, user.email) == ("clinic-1", "vet@maple.example")
    assert passwords.verify_password("a good password", user.password_hash)
    assert repositories.identity.staff == [user]
    with pytest.raises(services.StaffExistsError, match="already exists at clinic clinic-1"):
        await services.create_staff(uow, "clinic-1", "vet@maple.example", "another password")
    await services.create_staff(uow, "clinic-2", "vet@maple.example", "another password")
    with pytest.raises(passwords.WeakPasswordError):
        await services.create_staff(uow, "clinic-3", "vet@maple.example", "short")
    assert len(repositories.identity.staff) == 2


async def test_a_reset_password_replaces_the_old_one_and_an_unknown_user_is_none(
    uow: FakeUnitOfWork[Any],
) -> None:
    await services.create_staff(uow, "clinic-1", "vet@maple.example", "a good password")
    user = await services.reset_staff_password(uow, "clinic-1", "VET@maple.example", "a new password")
    assert user is not None
    assert passwords.verify_password("a new password", user.password_hash)
    assert await services.reset_staff_password(uow, "clinic-2", "vet@maple.example", "a new password") is None


async def test_staff_candidates_are_found_by_lower_cased_email_and_optional_clinic(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    repositories.identity.staff += [
        StaffUser("clinic-1", "vet@x.org", "h"),
        StaffUser("clinic-2", "vet@x.org", "h"),
    ]
    assert len(await services.find_staff_candidates(uow, "VET@x.org")) == 2
    [only] = await services.find_staff_candidates(uow, "vet@x.org", "clinic-2")
    assert only.clinic_id == "clinic-2"


async def test_the_right_password_signs_a_staff_user_in_with_a_staff_token(
    uow: FakeUnitOfWork[Any], limits: SignInLimits
) -> None:
    user = await services.create_staff(uow, "clinic-1", "vet@maple.example", "a good password")
    issued = await sign_in(uow, limits, "Vet@Maple.example", "a good password")
    principal = await TokenVerifier(None, static_jwks=KEY.jwks()).verify(issued.access_token)
    assert (principal.role, principal.sub, principal.clinic_id) == ("staff", str(user.id), "clinic-1")
    assert issued.expires_in == 8 * 3600


async def test_a_wrong_password_and_an_unknown_email_are_refused_alike(
    uow: FakeUnitOfWork[Any], limits: SignInLimits
) -> None:
    await services.create_staff(uow, "clinic-1", "vet@maple.example", "a good password")
    with pytest.raises(services.InvalidCredentials, match="invalid email or password"):
        await sign_in(uow, limits, "vet@maple.example", "not the password")
    with pytest.raises(services.InvalidCredentials, match="invalid email or password"):
        await sign_in(uow, limits, "nobody@maple.example", "a good password")


async def test_an_email_at_several_clinics_needs_the_clinic(
    uow: FakeUnitOfWork[Any], limits: SignInLimits
) -> None:
    for clinic_id in ("clinic-1", "clinic-2"):
        await services.create_staff(uow, clinic_id, "vet@maple.example", "a good password")
    with pytest.raises(services.AmbiguousStaffError, match="give clinic_id"):
        await sign_in(uow, limits, "vet@maple.example", "a good password")
    issued = await sign_in(uow, limits, "vet@maple.example", "a good password", clinic_id="clinic-2")
    assert issued.access_token


async def test_failed_sign_ins_in_a_row_lock_the_email_and_a_success_clears_the_count(
    uow: FakeUnitOfWork[Any], limits: SignInLimits
) -> None:
    await services.create_staff(uow, "clinic-1", "vet@maple.example", "a good password")
    for _ in range(4):
        with pytest.raises(services.InvalidCredentials):
            await sign_in(uow, limits, "vet@maple.example", "wrong password")
    await sign_in(uow, limits, "vet@maple.example", "a good password")  # the 5th attempt: cleared
    for _ in range(5):
        with pytest.raises(services.InvalidCredentials):
            await sign_in(uow, limits, "vet@maple.example", "wrong password")
    with pytest.raises(services.TooManySignInAttempts) as limited:
        await sign_in(uow, limits, "vet@maple.example", "a good password")
    assert 1 <= limited.value.retry_after <= 60


# --- parents ------------------------------------------------------------------------------------


async def test_a_dev_token_opens_a_known_clients_account_and_an_unknown_client_is_not_found(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.identity.upsert_contact(ADA, AT)
    issued = await services.dev_token(uow, TOKENS, "clinic-1", "C-1")
    principal = await TokenVerifier(None, static_jwks=KEY.jwks()).verify(issued.access_token)
    account_id, origin = repositories.identity.accounts[("clinic-1", "C-1")]
    assert (principal.role, principal.sub, principal.client_id, origin) == (
        "parent",
        str(account_id),
        "C-1",
        "dev",
    )
    with pytest.raises(services.UnknownClient, match="no client C-9 at clinic clinic-1"):
        await services.dev_token(uow, TOKENS, "clinic-1", "C-9")
    assert list(repositories.identity.accounts) == [("clinic-1", "C-1")]


async def test_a_parents_contact_details_are_the_clinics_record(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await repositories.identity.upsert_contact(ADA, AT)
    assert await services.contact_details(uow, "clinic-1", "C-1") == ADA
    with pytest.raises(services.UnknownClient, match="no client C-2 at clinic clinic-1"):
        await services.contact_details(uow, "clinic-1", "C-2")


# --- events consumed ----------------------------------------------------------------------------


def _envelope(event: Any, client_id: str | None = "C-1", at: datetime = AT) -> Envelope:
    return Envelope.wrap(event, clinic_id="clinic-1", client_id=client_id, producer="sync", occurred_at=at)


async def test_a_contact_is_recorded_once_and_an_older_one_does_not_overwrite_it(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    envelope = _envelope(ClientUpserted(first_name="Ada", last_name="Lovelace"))
    assert await services.record_contact(uow, envelope, ADA)
    assert not await services.record_contact(uow, envelope, ADA)
    older = _envelope(ClientUpserted(first_name="Old", last_name="Name"), at=AT - timedelta(days=1))
    assert await services.record_contact(uow, older, Contact("clinic-1", "C-1", "Old", "Name", None, None))
    assert repositories.identity.contacts[("clinic-1", "C-1")] == (ADA, AT)
    assert uow.claimed == {("identity", envelope.event_id), ("identity", older.event_id)}


async def test_a_contact_the_pims_removed_is_forgotten_once(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await services.record_contact(uow, _envelope(ClientUpserted(first_name="Ada", last_name="Lovelace")), ADA)
    removed = _envelope(ClientRemoved(reason="deleted_in_pims"))
    assert await services.forget_contact(uow, removed, "C-1")
    assert not await services.forget_contact(uow, removed, "C-1")
    assert ("clinic-1", "C-1") not in repositories.identity.contacts


async def test_a_reminder_opens_the_clients_account_once(uow: FakeUnitOfWork[Any], repositories: Any) -> None:
    envelope = _envelope(ReminderSent(reminder_id="r-1", channel="sms", kind="service"))
    assert await services.open_account(uow, envelope, "C-1", "reminder")
    assert not await services.open_account(uow, envelope, "C-1", "reminder")
    [(_, origin)] = repositories.identity.accounts.values()
    assert origin == "reminder"


async def test_a_registered_clinic_is_recorded_once(uow: FakeUnitOfWork[Any], repositories: Any) -> None:
    envelope = _envelope(ClinicRegistered(name="Happy Paws", pims="ezyvet"), client_id=None)
    assert await services.record_clinic(uow, envelope, "Happy Paws")
    assert not await services.record_clinic(uow, envelope, "Happy Paws")
    assert repositories.identity.clinics == {"clinic-1": ("Happy Paws", AT)}
    assert uow.commits == 2
