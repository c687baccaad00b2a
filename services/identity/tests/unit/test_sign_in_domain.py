"""The sign-in domain: identifiers, the code's states, refresh-token checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from petportal_identity.domain.sign_in import (
    Attempt,
    Challenge,
    Identifier,
    InvalidIdentifier,
    RefreshOutcome,
    RefreshToken,
    check_refresh,
    keyed_hash,
    new_code,
)
from petportal_runtime.auth import ClientRef

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)
PEPPER = b"pepper"
ANN = ClientRef(clinic_id="c1", client_id="k1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann.Lee@Example.COM ", Identifier("email", "ann.lee@example.com")),
        ("(415) 555-2671", Identifier("phone", "+14155552671")),
        ("+1 415 555 2671", Identifier("phone", "+14155552671")),
        ("415.555.2671", Identifier("phone", "+14155552671")),
    ],
)
def test_identifiers_are_normalised(raw: str, expected: Identifier) -> None:
    assert Identifier.parse(raw) == expected


@pytest.mark.parametrize("raw", ["", "ann", "ann@", "@example.com", "a b@example.com", "12", "+1 000 000"])
def test_what_is_neither_an_email_nor_a_number_is_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        Identifier.parse(raw)


def test_the_digest_depends_on_the_key_and_never_shows_the_identifier() -> None:
    ann = Identifier("email", "ann@example.com")
    assert ann.digest(PEPPER) != ann.digest(b"other")
    assert "ann" not in ann.digest(PEPPER)


def test_codes_are_six_random_digits() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190


def challenge(clients: list[ClientRef] | None = None, code: str = "123456") -> Challenge:
    return Challenge(
        identifier_digest="d",
        kind="email",
        clients=[ANN] if clients is None else clients,
        code_digest=keyed_hash(PEPPER, code),
        link_digest=keyed_hash(PEPPER, "link"),
        expires_at=NOW + timedelta(minutes=10),
    )


def test_a_code_works_once() -> None:
    c = challenge()
    assert c.try_code(keyed_hash(PEPPER, "123456"), NOW, 5) is Attempt.OK
    assert c.try_code(keyed_hash(PEPPER, "123456"), NOW, 5) is Attempt.USED
    assert c.try_link(NOW) is Attempt.USED  # signed in already: the link is spent too


def test_wrong_codes_lock_at_the_limit_even_before_the_right_one() -> None:
    c = challenge()
    wrong = keyed_hash(PEPPER, "000000")
    assert [c.try_code(wrong, NOW, 3) for _ in range(3)] == [Attempt.WRONG, Attempt.WRONG, Attempt.LOCKED]
    assert c.try_code(keyed_hash(PEPPER, "123456"), NOW, 3) is Attempt.LOCKED


def test_an_expired_code_and_a_challenge_matching_nobody_never_work() -> None:
    assert (
        challenge().try_code(keyed_hash(PEPPER, "123456"), NOW + timedelta(minutes=10), 5) is Attempt.EXPIRED
    )
    nobody = challenge(clients=[])
    assert nobody.try_code(keyed_hash(PEPPER, "123456"), NOW, 5) is Attempt.WRONG
    assert nobody.try_link(NOW) is Attempt.WRONG


def test_refresh_token_states() -> None:
    token = RefreshToken("d", uuid.uuid4(), "p", [ANN], ANN, NOW + timedelta(days=1))
    assert check_refresh(None, NOW) is RefreshOutcome.UNKNOWN
    assert check_refresh(token, NOW) is RefreshOutcome.OK
    assert check_refresh(token, NOW + timedelta(days=1)) is RefreshOutcome.EXPIRED
    token.used_at = NOW
    assert check_refresh(token, NOW) is RefreshOutcome.REUSED
    token.revoked_at = NOW
    assert check_refresh(token, NOW) is RefreshOutcome.REVOKED
