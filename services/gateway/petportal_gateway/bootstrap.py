"""Wiring: the runtime (no database, no broker), the upstream pool and the rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

from petportal_runtime.ratelimit import RateLimiter, rate_limit_storage
from petportal_runtime.service import ServiceRuntime

from .adapters.upstreams import PoolLimits, Timeouts, Upstreams, UpstreamSend
from .settings import GatewaySettings


@dataclass
class Gateway:
    settings: GatewaySettings
    runtime: ServiceRuntime
    upstreams: Upstreams
    rate_limiter: RateLimiter


def build_runtime(settings: GatewaySettings) -> ServiceRuntime:
    return ServiceRuntime(settings, database=False, broker=False)


def bootstrap(
    settings: GatewaySettings | None = None,
    *,
    send: UpstreamSend | None = None,
) -> Gateway:
    """`send` lets tests replace the network under the upstream client."""
    settings = settings or GatewaySettings()
    runtime = build_runtime(settings)
    upstreams = Upstreams(
        settings.upstream_urls(),
        timeouts=Timeouts(
            request=settings.request_timeout_seconds,
            connect=min(settings.connect_timeout_seconds, settings.request_timeout_seconds),
        ),
        limits=PoolLimits(max_connections=settings.upstream_max_connections),
        send=send,
    )
    runtime.checks["identity_jwks"] = upstreams.check_jwks
    # Per client IP. In memory unless RATE_LIMIT_STORAGE_URL names a shared storage (Redis); a storage
    # that does not answer lets requests through rather than failing every one of them.
    rate_limiter = RateLimiter(
        rate_limit_storage(runtime),
        f"{settings.rate_limit_per_minute}/minute",
        namespace="gateway-client-ip",
        fail_open=True,
    )
    return Gateway(settings, runtime, upstreams, rate_limiter)
