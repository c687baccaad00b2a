"""identity against a real PostgreSQL and a real Kafka broker, through its ASGI app."""

import argparse
import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import petportal_identity
from petportal_devkit.testing import DatabaseFactory, app_client, eventually
from petportal_identity.bootstrap import bootstrap
from petportal_identity.entrypoints.app import create_app
from petportal_identity.entrypoints.cli import create_staff, reset_staff_password, unlock_staff
from petportal_identity.settings import IdentitySettings
from petportal_runtime import logging as service_logging
from petportal_runtime.migrations import upgrade
from petportal_schemas import ClientUpserted, Envelope, Event, ReminderSent

pytestmark = pytest.mark.integration

MIGRATIONS = Path(petportal_identity.__file__).parent / "migrations"


@pytest.fixture
async def settings(make_database: DatabaseFactory, kafka_bootstrap: str, tmp_path: Path) -> IdentitySettings:
    url = make_database("identity")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    return IdentitySettings(
        environment="test",
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
        dev_token_endpoint_enabled=True,
        dev_key_dir=tmp_path / "keys",
    )


@pytest.fixture
async def client(settings: IdentitySettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(bootstrap(settings))
    async with app_client(app, "http://identity") as http:
        yield http


async def publish(bootstrap: str, event: Event, clinic_id: str, client_id: str, producer: str) -> uuid.UUID:
    envelope = Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer=producer)
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await kafka.start()
    try:
        await kafka.send_and_wait(envelope.topic, envelope.to_bytes(), key=envelope.key.encode())
    finally:
        await kafka.stop()
    return envelope.event_id


async def scalar(url: str, sql: str, **params: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()
    finally:
        await engine.dispose()


async def test_consumed_contact_gets_a_dev_token_and_sees_its_account(
    settings: IdentitySettings, client: httpx.AsyncClient
) -> None:
    clinic_id, client_id = f"clinic-{uuid.uuid4().hex[:8]}", "k-100"
    upserted = ClientUpserted(
        first_name="Ann", last_name="Lee", email="ann@example.com", phone="+14155552671"
    )
    await publish(settings.kafka_bootstrap_servers, upserted, clinic_id, client_id, "sync")

    async def dev_token() -> httpx.Response | None:
        response = await client.post(
            "/api/v1/auth/dev-token", json={"clinic_id": clinic_id, "client_id": client_id}
        )
        return response if response.status_code == 200 else None

    response = await eventually(dev_token)
    assert response is not None, "the ClientUpserted event was not applied in time"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600

    # The token is signed with the key published in the JWKS, and names the parent.
    jwks = (await client.get("/.well-known/jwks.json")).json()
    [jwk] = jwks["keys"]
    assert jwt.get_unverified_header(body["access_token"])["kid"] == jwk["kid"]
    claims = jwt.decode(
        body["access_token"], jwt.PyJWK.from_dict(jwk).key, algorithms=["EdDSA"], audience="petportal"
    )
    assert claims["role"] == "parent"
    assert (claims["clinic_id"], claims["client_id"]) == (clinic_id, client_id)
    account_id = await scalar(
        settings.database_url,
        "SELECT id::text FROM parent_accounts"
        " WHERE clinic_id = :c AND client_id = :k AND created_via = 'dev'",
        c=clinic_id,
        k=client_id,
    )
    assert claims["sub"] == account_id

    auth = {"Authorization": f"Bearer {body['access_token']}"}
    account = await client.get("/api/v1/account", headers=auth)
    assert account.json() == {
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "phone": "+14155552671",
        "editable": False,
    }
    # A second token for the same client is for the same account.
    again = await client.post("/api/v1/auth/dev-token", json={"clinic_id": clinic_id, "client_id": client_id})
    assert jwt.decode(again.json()["access_token"], options={"verify_signature": False})["sub"] == account_id

    unknown = await client.post(
        "/api/v1/auth/dev-token", json={"clinic_id": clinic_id, "client_id": "nobody"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == f"no client nobody at clinic {clinic_id}"
    assert (await client.get("/api/v1/account")).status_code == 401
    assert (await client.get("/api/v1/account", headers={"Authorization": "Bearer x.y.z"})).status_code == 401


async def test_reminder_opens_an_account_once(settings: IdentitySettings, client: httpx.AsyncClient) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    reminder = ReminderSent(reminder_id="r1", channel="sms", kind="service")
    # A second reminder does not open a second account.
    event_ids = [
        await publish(settings.kafka_bootstrap_servers, reminder, clinic_id, "k-7", "notify")
        for _ in range(2)
    ]

    async def both_applied() -> bool:
        applied = await scalar(
            settings.database_url,
            "SELECT count(*) FROM inbox WHERE event_id = ANY(CAST(:ids AS uuid[]))",
            ids=[str(i) for i in event_ids],
        )
        return bool(applied == 2)

    assert await eventually(both_applied), "the reminders were not applied in time"
    accounts = await scalar(
        settings.database_url,
        "SELECT count(*) FROM parent_accounts WHERE clinic_id = :c AND client_id = 'k-7'"
        " AND created_via = 'reminder'",
        c=clinic_id,
    )
    assert accounts == 1


async def test_staff_sign_in(settings: IdentitySettings, client: httpx.AsyncClient, capsys: Any) -> None:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    args = argparse.Namespace(clinic_id=clinic_id, email="Vet@Maple.example", password="a good password")
    assert await create_staff(args, settings) == 0
    assert await create_staff(args, settings) == 1  # exists
    assert "already exists" in capsys.readouterr().err
    assert await scalar(settings.database_url, "SELECT email FROM staff_users") == "vet@maple.example"

    ok = await client.post(
        "/clinic/v1/auth/token", json={"email": "vet@MAPLE.example", "password": "a good password"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["expires_in"] == 8 * 3600
    claims = jwt.decode(ok.json()["access_token"], options={"verify_signature": False})
    assert (claims["role"], claims["clinic_id"]) == ("staff", clinic_id)
    assert "client_id" not in claims

    wrong = await client.post(
        "/clinic/v1/auth/token", json={"email": "vet@maple.example", "password": "nope"}
    )
    unknown = await client.post(
        "/clinic/v1/auth/token", json={"email": "who@maple.example", "password": "nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid email or password"}

    # A staff token is not a parent token.
    staff_auth = {"Authorization": f"Bearer {ok.json()['access_token']}"}
    assert (await client.get("/api/v1/account", headers=staff_auth)).status_code == 403


async def test_staff_sign_in_is_rate_limited_per_email_and_per_address(
    settings: IdentitySettings, client: httpx.AsyncClient
) -> None:
    for attempt in range(5):
        response = await client.post("/clinic/v1/auth/token", json={"email": "x@y.example", "password": "p"})
        assert response.status_code == 401, attempt
    limited = await client.post("/clinic/v1/auth/token", json={"email": "X@y.example", "password": "p"})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60

    # Per address: 20 attempts a minute over any emails (5 already made above).
    statuses = [
        (
            await client.post("/clinic/v1/auth/token", json={"email": f"u{i}@y.example", "password": "p"})
        ).status_code
        for i in range(16)
    ]
    assert statuses[:14] == [401] * 14
    assert statuses[14:] == [429, 429]


@asynccontextmanager
async def replica(settings: IdentitySettings) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP side of another identity process on the same database."""
    app = create_app(bootstrap(settings))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://identity-2"
        ) as http:
            yield http
    finally:
        await app.state.container.runtime.engine.dispose()


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/clinic/v1/auth/token", json={"email": email, "password": password})


async def staff_user(settings: IdentitySettings, email: str, password: str) -> str:
    clinic_id = f"clinic-{uuid.uuid4().hex[:8]}"
    args = argparse.Namespace(clinic_id=clinic_id, email=email, password=password)
    assert await create_staff(args, settings) == 0
    return clinic_id


async def lock(client: httpx.AsyncClient, email: str) -> None:
    for _ in range(5):
        assert (await sign_in(client, email, "wrong password")).status_code == 401


async def test_five_failed_sign_ins_lock_an_email_on_every_replica_whether_it_exists_or_not(
    settings: IdentitySettings, client: httpx.AsyncClient
) -> None:
    await staff_user(settings, "vet@maple.example", "a good password")
    async with replica(settings) as other:
        for email in ("vet@maple.example", "nobody@maple.example"):
            for http in (client, client, client, other, other):
                assert (await sign_in(http, email, "wrong password")).status_code == 401
        # Locked, even with the right password, on either replica.
        known = await sign_in(client, "vet@maple.example", "a good password")
        unknown = await sign_in(other, "nobody@maple.example", "a good password")
        assert (await sign_in(other, "vet@maple.example", "a good password")).status_code == 429
    assert known.status_code == unknown.status_code == 429
    assert known.json() == unknown.json() == {"detail": "too many sign-in attempts; try again later"}
    assert 1 <= int(known.headers["retry-after"]) <= 60
    assert 1 <= int(unknown.headers["retry-after"]) <= 60


async def test_a_successful_sign_in_starts_the_count_again(
    settings: IdentitySettings, client: httpx.AsyncClient
) -> None:
    await staff_user(settings, "vet@maple.example", "a good password")
    for _ in range(2):
        for _ in range(4):
            assert (await sign_in(client, "vet@maple.example", "wrong password")).status_code == 401
        assert (await sign_in(client, "vet@maple.example", "a good password")).status_code == 200


async def test_unlock_staff_clears_the_lock_held_by_a_running_identity(
    settings: IdentitySettings, client: httpx.AsyncClient, capsys: Any
) -> None:
    await staff_user(settings, "vet@maple.example", "a good password")
    await lock(client, "vet@maple.example")
    await lock(client, "nobody@maple.example")
    assert (await sign_in(client, "vet@maple.example", "a good password")).status_code == 429

    assert await unlock_staff(argparse.Namespace(email="Vet@Maple.example"), settings) == 0
    assert "sign-in unlocked" in capsys.readouterr().out
    assert (await sign_in(client, "vet@maple.example", "a good password")).status_code == 200
    # An email no staff user has is unlocked the same way.
    assert await unlock_staff(argparse.Namespace(email="nobody@maple.example"), settings) == 0
    assert (await sign_in(client, "nobody@maple.example", "wrong password")).status_code == 401


async def test_reset_staff_password_sets_the_password_and_clears_the_lock(
    settings: IdentitySettings, client: httpx.AsyncClient, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic_id = await staff_user(settings, "vet@maple.example", "the old password")
    await lock(client, "vet@maple.example")

    def reset(email: str, clinic: str, stdin: str) -> Any:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return reset_staff_password(argparse.Namespace(clinic_id=clinic, email=email), settings)

    assert await reset("VET@maple.example", clinic_id, "the new password\n") == 0
    assert "sign-in unlocked" in capsys.readouterr().out
    assert (await sign_in(client, "vet@maple.example", "the old password")).status_code == 401
    assert (await sign_in(client, "vet@maple.example", "the new password")).status_code == 200

    assert await reset("vet@maple.example", clinic_id, "short\n") == 1
    assert await reset("vet@maple.example", "other-clinic", "another good one\n") == 1
    assert await reset("vet@maple.example", "not a clinic id!", "another good one\n") == 2
    assert "no staff user with that email at clinic other-clinic" in capsys.readouterr().err
    assert (await sign_in(client, "vet@maple.example", "the new password")).status_code == 200


async def test_dev_token_endpoint_is_absent_unless_enabled(settings: IdentitySettings) -> None:
    app = create_app(bootstrap(settings.model_copy(update={"dev_token_endpoint_enabled": False})))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity") as http:
        response = await http.post("/api/v1/auth/dev-token", json={"clinic_id": "c", "client_id": "k"})
        assert response.status_code == 404
        assert (await http.get("/.well-known/jwks.json")).json()["keys"][0]["crv"] == "Ed25519"


async def test_sign_in_input_the_portal_refuses_is_a_client_error_and_never_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our own log lines are written by structlog straight to its stream; other libraries' records go
    # through the standard library (caplog). Both are read.
    lines = io.StringIO()
    monkeypatch.setattr(service_logging._Output, "stream", lines)
    url = "/clinic/v1/auth/token"
    login = '{{"email": "{}", "password": "{}"}}'
    cases: list[tuple[bytes, int, list[Any] | None]] = [
        (login.format("vet\\u0000@maple.example", "secret-pass").encode(), 422, ["body", "email"]),
        (login.format("vet@maple.example", "secret-pass\\u0000").encode(), 422, ["body", "password"]),
        (login.format("vet\\udbff@maple.example", "secret-pass").encode(), 422, ["body", "email"]),
        (login.format("vet@maple.example\\u0008", "secret-pass").encode(), 422, ["body", "email"]),
        (b'{"email": "vet@maple.example", "password": NaN}', 422, ["body", "password"]),
        (b'{"email": Infinity, "password": "secret-pass"}', 422, ["body", "email"]),
        (b'{"email": ' + b"[" * 40 + b"]" * 40 + b', "password": "secret-pass"}', 422, None),
        (b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b', "password": "secret-pass"}', 400, None),
        (b'{"email": "vet@maple.example", "password": "\xc3"}', 400, None),
        (login.format("vet@maple.example", "secret-pass" * 2000).encode(), 413, None),
        (b'{"clinic_id": "a\\u0000", "client_id": "k1"}', 422, ["body", "clinic_id"]),
    ]
    for content, status, loc in cases:
        path = "/api/v1/auth/dev-token" if b"clinic_id" in content else url
        response = await client.post(path, content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == status, (content[:60], response.text)
        if loc is not None:
            assert response.json()["detail"][0]["loc"] == loc
    form = await client.post(url, content=b"email=vet%40maple.example&password=secret-pass")
    assert form.status_code == 415
    query = await client.get("/api/v1/account?x=%00")
    assert query.json()["detail"][0]["loc"] == ["query", "x"]
    logged = lines.getvalue() + caplog.text
    assert '"status": 422' in logged
    assert "maple.example" not in logged
    assert "secret-pass" not in logged
