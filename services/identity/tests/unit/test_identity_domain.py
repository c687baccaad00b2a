import argparse
import hashlib
import stat
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from petportal_identity.adapters.keystore import DEV_KEY_NAME, SigningKeyError, load_key_set, load_signing_key
from petportal_identity.adapters.ratelimit import SignInLimits
from petportal_identity.domain import passwords
from petportal_identity.domain.keys import SigningKey, key_id
from petportal_identity.domain.model import StaffUser, normalise_email
from petportal_identity.entrypoints.cli import unlock_staff
from petportal_identity.service_layer.services import TokenIssuer, verify_staff_password
from petportal_identity.settings import IdentitySettings
from petportal_runtime.auth import InvalidToken, TokenVerifier
from petportal_runtime.ratelimit import MemoryStorage

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _internal_api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production settings also need the services' shared credential, the token hash key and an https
    portal: given here, so each test checks only its own setting."""
    monkeypatch.setenv("INTERNAL_API_TOKEN", "a-secret-of-its-own")
    monkeypatch.setenv("TOKEN_HASH_KEY", "k" * 32)
    monkeypatch.setenv("PORTAL_PUBLIC_URL", "https://portal.example.com")


FAST = passwords.ScryptParams(n=2**10)


def test_password_hash_verifies_only_the_right_password() -> None:
    stored = passwords.hash_password("correct horse battery", FAST)
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterY", stored)
    assert not passwords.verify_password("", stored)


def test_password_hash_stores_its_parameters_and_a_random_salt() -> None:
    first = passwords.hash_password("same password", FAST)
    second = passwords.hash_password("same password", FAST)
    assert first != second  # salted
    scheme, n, r, p, _salt, _digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1")
    # Verifies with the parameters it was stored with, not the current defaults.
    assert passwords.verify_password("same password", first)


@pytest.mark.parametrize("stored", ["", "bcrypt$x", "scrypt$a$b$c$d$e", "scrypt$1024$8$1$!!$!!"])
def test_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert passwords.verify_password("anything", stored) is False


def test_weak_passwords_are_refused() -> None:
    with pytest.raises(passwords.WeakPasswordError):
        passwords.check_strength("short")
    passwords.check_strength("long enough")


async def test_unknown_email_still_pays_for_a_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = passwords.verify_password

    def spy(password: str, stored: str) -> bool:
        calls.append(stored)
        return real(password, stored)

    monkeypatch.setattr(passwords, "verify_password", spy)
    assert await verify_staff_password([], "whatever") is None
    assert calls == [passwords.DUMMY_HASH]


def test_key_id_is_the_sha256_prefix_of_the_raw_public_key() -> None:
    key = SigningKey.generate()
    raw = key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(key.public_key) == hashlib.sha256(raw).hexdigest()[:16]
    assert len(key.kid) == 16
    assert key.jwks()["keys"][0]["kid"] == key.kid
    assert key.jwks()["keys"][0]["alg"] == "EdDSA"
    assert "d" not in key.jwks()["keys"][0]  # public part only
    assert SigningKey.from_pem(key.to_pem()).kid == key.kid


def test_production_refuses_the_dev_token_endpoint() -> None:
    with pytest.raises(ValidationError, match="DEV_TOKEN_ENDPOINT_ENABLED"):
        IdentitySettings(environment="production", dev_token_endpoint_enabled=True)
    assert IdentitySettings(environment="development", dev_token_endpoint_enabled=True)
    assert IdentitySettings(environment="production").dev_token_endpoint_enabled is False


def test_production_requires_a_token_hash_key_and_an_https_portal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKEN_HASH_KEY")
    with pytest.raises(ValidationError, match="TOKEN_HASH_KEY"):
        IdentitySettings(environment="production")
    with pytest.raises(ValidationError, match="TOKEN_HASH_KEY"):
        IdentitySettings(environment="production", token_hash_key="short")
    with pytest.raises(ValidationError, match="PORTAL_PUBLIC_URL"):
        IdentitySettings(environment="production", token_hash_key="k" * 32, portal_public_url="http://x")


def test_dev_token_endpoint_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("DEV_TOKEN_ENDPOINT_ENABLED", "true")
    with pytest.raises(ValidationError):
        IdentitySettings()


def test_production_requires_a_signing_key_file(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="SIGNING_KEY_FILE"):
        load_signing_key(IdentitySettings(environment="production", dev_key_dir=tmp_path))


def test_development_key_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    settings = IdentitySettings(environment="development", dev_key_dir=tmp_path)
    first = load_signing_key(settings)
    path = settings.dev_key_dir / DEV_KEY_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(settings).kid == first.kid  # kept across restarts
    # An explicit key file wins, in any environment.
    explicit = tmp_path / "explicit.pem"
    other = SigningKey.generate()
    explicit.write_bytes(other.to_pem())
    prod = IdentitySettings(environment="production", signing_key_file=explicit)
    assert load_signing_key(prod).kid == other.kid


async def test_tokens_verify_with_the_own_jwks_and_carry_the_principal() -> None:
    key = SigningKey.generate()
    issuer = TokenIssuer(key, parent_ttl=timedelta(hours=1), staff_ttl=timedelta(hours=8))
    verifier = TokenVerifier(None, static_jwks=key.jwks())
    account = uuid.uuid4()
    parent = issuer.parent(account, "clinic-1", "client-9")
    assert parent.expires_in == 3600
    principal = await verifier.verify(parent.access_token)
    assert (principal.role, principal.sub, principal.clinic_id, principal.client_id) == (
        "parent",
        str(account),
        "clinic-1",
        "client-9",
    )
    staff = issuer.staff(StaffUser(clinic_id="clinic-1", email="a@b.c", password_hash="x"))
    assert staff.expires_in == 8 * 3600
    assert (await verifier.verify(staff.access_token)).role == "staff"
    # A token from another key is refused.
    stranger = TokenIssuer(SigningKey.generate(), timedelta(hours=1), timedelta(hours=1))
    with pytest.raises(InvalidToken):
        await verifier.verify(stranger.parent(account, "clinic-1", "client-9").access_token)


async def test_rate_limiter_limits_per_email_and_per_address() -> None:
    limiter = SignInLimits(MemoryStorage(), per_email="2/minute", per_ip="3/minute")
    assert await limiter.hit("a@x.org", "10.0.0.1") is None
    assert await limiter.hit("a@x.org", "10.0.0.2") is None
    retry = await limiter.hit("a@x.org", "10.0.0.3")
    assert retry is not None
    assert 1 <= retry <= 60
    # The per-address limit counts every email from that address.
    assert await limiter.hit("b@x.org", "10.0.0.9") is None
    assert await limiter.hit("c@x.org", "10.0.0.9") is None
    assert await limiter.hit("d@x.org", "10.0.0.9") is None
    assert await limiter.hit("e@x.org", "10.0.0.9") is not None
    # Unlocking an email frees that email only, not an address.
    await limiter.unlock("a@x.org")
    assert await limiter.hit("a@x.org", "10.0.0.4") is None
    assert await limiter.hit("f@x.org", "10.0.0.9") is not None


async def test_unlock_staff_says_a_lock_in_process_memory_cannot_be_cleared_from_outside(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = IdentitySettings(
        environment="test",
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",  # never connected to
        rate_limit_storage_url="memory://",
    )
    assert await unlock_staff(argparse.Namespace(email="vet@clinic.example"), settings) == 1
    assert "restart identity" in capsys.readouterr().err


def test_emails_are_compared_lower_cased() -> None:
    assert normalise_email("  Vet@Clinic.EXAMPLE ") == "vet@clinic.example"


async def test_a_rotation_publishes_the_previous_key_until_it_is_dropped(tmp_path: Path) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    (tmp_path / "old.pem").write_bytes(old.to_pem())
    (tmp_path / "new.pem").write_bytes(new.to_pem())
    public_only = tmp_path / "old-public.pem"
    public_only.write_bytes(
        old.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    user = StaffUser(clinic_id="c1", email="a@b.example", password_hash="-")
    old_token = TokenIssuer(old, timedelta(hours=1), timedelta(hours=1)).staff(user).access_token
    for previous in (tmp_path / "old.pem", public_only):
        settings = IdentitySettings(
            signing_key_file=tmp_path / "new.pem", previous_signing_key_files=[previous]
        )
        keys = load_key_set(settings)
        assert keys.current.kid == new.kid  # signs with the new one only
        assert [k["kid"] for k in keys.jwks()["keys"]] == [new.kid, old.kid]
        during = TokenVerifier(None, static_jwks=keys.jwks())
        assert (await during.verify(old_token)).clinic_id == "c1"
    after = TokenVerifier(
        None, static_jwks=load_key_set(IdentitySettings(signing_key_file=tmp_path / "new.pem")).jwks()
    )
    with pytest.raises(InvalidToken):
        await after.verify(old_token)
    with pytest.raises(SigningKeyError):
        load_key_set(
            IdentitySettings(
                signing_key_file=tmp_path / "new.pem", previous_signing_key_files=[tmp_path / "none.pem"]
            )
        )
