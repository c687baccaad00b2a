"""Wiring: settings → signing key, runtime, the unit of work on identity's repositories, consumers,
token issuer, sign-in limits. Tests pass their own pieces (a token verifier, a fake unit of work)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, on, subscribe_events
from petportal_runtime.container import Container
from petportal_runtime.ratelimit import rate_limit_storage
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import ClientUpserted, ClinicRegistered, ReminderSent, topics

from .adapters.keystore import load_signing_key
from .adapters.ratelimit import SignInLimits
from .adapters.repository import sql_repositories
from .entrypoints import handlers
from .service_layer.services import TokenIssuer
from .service_layer.unit_of_work import IdentityRepositories, IdentityUnitOfWork
from .settings import IdentitySettings


@dataclass
class Identity(Container[IdentitySettings, IdentityRepositories]):
    tokens: TokenIssuer
    limiter: SignInLimits


def build_runtime(settings: ServiceSettings, token_verifier: TokenVerifier | None = None) -> ServiceRuntime:
    return ServiceRuntime(settings, token_verifier=token_verifier)


def sign_in_limits(runtime: ServiceRuntime, settings: IdentitySettings) -> SignInLimits:
    """In the storage RATE_LIMIT_STORAGE_URL names (identity's own database by default)."""
    storage = rate_limit_storage(runtime)
    return SignInLimits(storage, settings.login_rate_limit_per_email, settings.login_rate_limit_per_ip)


def bootstrap(
    settings: IdentitySettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    unit_of_work: Callable[[], IdentityUnitOfWork] | None = None,
    consumers: bool = True,
) -> Identity:
    settings = settings or IdentitySettings()
    key = load_signing_key(settings)
    # identity verifies the tokens it signs with its own key: no JWKS round trip to itself.
    runtime = build_runtime(settings, token_verifier or TokenVerifier(None, static_jwks=key.jwks()))
    identity = Identity(
        settings,
        runtime,
        unit_of_work or (lambda: runtime.unit_of_work(sql_repositories)),
        tokens=TokenIssuer(
            key,
            parent_ttl=timedelta(seconds=settings.parent_token_ttl_seconds),
            staff_ttl=timedelta(seconds=settings.staff_token_ttl_seconds),
        ),
        limiter=sign_in_limits(runtime, settings),
    )
    if consumers:
        subscribe_events(
            runtime.broker,
            settings,
            [topics.SYNC, topics.NOTIFY],
            consumer=handlers.CONSUMER,
            handlers=[
                on(ClientUpserted, bind(handlers.record_contact, identity.unit_of_work)),
                on(ClinicRegistered, bind(handlers.record_clinic, identity.unit_of_work)),
                on(ReminderSent, bind(handlers.open_account_after_reminder, identity.unit_of_work)),
            ],
        )
    return identity
