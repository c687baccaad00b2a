"""Wiring: settings → signing key, runtime, the unit of work on identity's repositories, consumers,
token issuer, sign-in limits. Tests pass their own pieces (a token verifier, a fake unit of work)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from limits.aio.storage import Storage

from petportal_runtime.auth import TokenVerifier
from petportal_runtime.broker import bind, document_publisher, on, subscribe_events
from petportal_runtime.container import Container
from petportal_runtime.internal import internal_headers
from petportal_runtime.ratelimit import rate_limit_storage
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    ClientRemoved,
    ClientUpserted,
    ClinicRegistered,
    ReminderSent,
    topics,
)

from .adapters.keystore import load_key_set
from .adapters.notify_client import NotifyCodes
from .adapters.ratelimit import SignInLimits
from .adapters.repository import sql_repositories
from .domain.keys import KeySet
from .entrypoints import handlers
from .service_layer import erasure
from .service_layer.erasure import SendErasureCode
from .service_layer.services import TokenIssuer
from .service_layer.sign_in import SendCode, SignInPolicy
from .service_layer.unit_of_work import IdentityRepositories, IdentityUnitOfWork
from .settings import IdentitySettings


@dataclass
class Identity(Container[IdentitySettings, IdentityRepositories]):
    tokens: TokenIssuer
    keys: KeySet
    limiter: SignInLimits
    parent_limiter: SignInLimits
    sign_in: SignInPolicy
    send_code: SendCode
    send_erasure_code: SendErasureCode


def build_runtime(settings: ServiceSettings, token_verifier: TokenVerifier | None = None) -> ServiceRuntime:
    return ServiceRuntime(settings, token_verifier=token_verifier)


def sign_in_limits(storage: Storage, settings: IdentitySettings) -> tuple[SignInLimits, SignInLimits]:
    """Staff's and parents', in the storage RATE_LIMIT_STORAGE_URL names (identity's own database by
    default)."""
    staff = SignInLimits(storage, settings.login_rate_limit_per_email, settings.login_rate_limit_per_ip)
    parents = SignInLimits(
        storage,
        settings.parent_sign_in_rate_limit_per_identifier,
        settings.parent_sign_in_rate_limit_per_ip,
        namespace="parent-sign-in",
    )
    return staff, parents


def _notify_codes(runtime: ServiceRuntime, settings: IdentitySettings) -> NotifyCodes:
    codes = NotifyCodes(settings.notify_url, internal_headers(settings))
    runtime.closing.append(codes.close)
    return codes


def bootstrap(
    settings: IdentitySettings | None = None,
    *,
    token_verifier: TokenVerifier | None = None,
    unit_of_work: Callable[[], IdentityUnitOfWork] | None = None,
    consumers: bool = True,
    send_code: SendCode | None = None,
    send_erasure_code: SendErasureCode | None = None,
) -> Identity:
    """`send_code`: how sign-in codes go out (by default, notify's delivery API in the background)."""
    settings = settings or IdentitySettings()
    keys = load_key_set(settings)
    key = keys.current
    # identity verifies the tokens it signs with its own key: no JWKS round trip to itself.
    runtime = build_runtime(settings, token_verifier or TokenVerifier(None, static_jwks=keys.jwks()))
    staff_limits, parent_limits = sign_in_limits(rate_limit_storage(runtime), settings)
    notify = _notify_codes(runtime, settings) if send_code is None or send_erasure_code is None else None
    identity = Identity(
        settings,
        runtime,
        unit_of_work or (lambda: runtime.unit_of_work(sql_repositories)),
        tokens=TokenIssuer(
            key,
            parent_ttl=timedelta(seconds=settings.parent_token_ttl_seconds),
            staff_ttl=timedelta(seconds=settings.staff_token_ttl_seconds),
        ),
        keys=keys,
        limiter=staff_limits,
        parent_limiter=parent_limits,
        sign_in=SignInPolicy(
            pepper=settings.token_hash_key.get_secret_value().encode(),
            code_ttl_seconds=settings.sign_in_code_ttl_seconds,
            max_attempts=settings.sign_in_max_attempts,
            refresh_ttl_seconds=settings.refresh_token_ttl_days * 86_400,
            portal_url=settings.portal_public_url,
            phone_region=settings.default_phone_region,
        ),
        send_code=send_code or notify.send,  # type: ignore[union-attr]
        send_erasure_code=send_erasure_code or notify.send_erasure_code,  # type: ignore[union-attr]
    )
    if consumers:
        subscribe_events(
            runtime.broker,
            settings,
            [topics.SYNC, topics.NOTIFY, topics.IDENTITY, topics.ERASURE],
            consumer=handlers.CONSUMER,
            handlers=[
                on(ClientUpserted, bind(handlers.record_contact, identity.unit_of_work)),
                on(ClientRemoved, bind(handlers.forget_contact, identity.unit_of_work)),
                on(ClinicRegistered, bind(handlers.record_clinic, identity.unit_of_work)),
                on(ReminderSent, bind(handlers.open_account_after_reminder, identity.unit_of_work)),
                on(ClientErasureRequested, bind(handlers.erase_client, identity.unit_of_work)),
                on(ClientDataErased, bind(handlers.record_erasure_confirmation, identity.unit_of_work)),
            ],
        )
        document_publisher(runtime.broker, topics.IDENTITY, [ClientErasureRequested])
        document_publisher(runtime.broker, topics.ERASURE, [ClientDataErased])
        runtime.background.append(
            partial(
                erasure.keep_asking, identity.unit_of_work, timedelta(seconds=settings.erasure_retry_seconds)
            )
        )
    return identity
