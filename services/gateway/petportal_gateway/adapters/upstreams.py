"""The one pooled HTTP client the gateway forwards through, with header hygiene and error mapping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx
from opentelemetry import propagate, trace

from petportal_runtime import telemetry

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# The only client headers an upstream sees (plus X-Forwarded-For and the trace context we set).
FORWARDED_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "accept",
    "x-petportal-signature",
    "traceparent",
    "tracestate",
)
# Recomputed by our server (the body is re-sent decoded), or set by it.
_DROPPED_RESPONSE_HEADERS = HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}

_tracer = telemetry.tracer("gateway")


class UpstreamError(Exception):
    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


class UpstreamUnavailable(UpstreamError):
    """Refused, unreachable, or the connection broke: 503."""


class UpstreamTimeout(UpstreamError):
    """Connected but did not answer in time: 504."""


@dataclass(frozen=True)
class UpstreamResponse:
    status_code: int
    headers: list[tuple[str, str]]
    content: bytes


def request_headers(incoming: Mapping[str, str], client_ip: str | None) -> dict[str, str]:
    """Whitelisted client headers; everything else (cookies, hop-by-hop, forged X-Forwarded-*) dropped."""
    headers = {name: incoming[name] for name in FORWARDED_REQUEST_HEADERS if name in incoming}
    if client_ip:
        headers["x-forwarded-for"] = client_ip
    return headers


def response_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = [(name.lower(), value) for name, value in upstream]
    nominated = {
        token.strip().lower() for name, value in pairs if name == "connection" for token in value.split(",")
    }
    return [(n, v) for n, v in pairs if n not in _DROPPED_RESPONSE_HEADERS and n not in nominated]


class Upstreams:
    """Base URLs of the services and the shared connection pool (opened in the app's lifespan)."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout: httpx.Timeout,
        limits: httpx.Limits,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = {name: httpx.URL(url) for name, url in urls.items()}
        self._timeout = timeout
        self._limits = limits
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                limits=self._limits,
                transport=self._transport,
                follow_redirects=False,
                trust_env=False,
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the gateway's HTTP client is not started")
        return self._client

    async def forward(
        self,
        service: str,
        method: str,
        raw_path: bytes,
        headers: dict[str, str],
        content: bytes = b"",
    ) -> UpstreamResponse:
        """Send one request to `service`; raw_path is the still-encoded path plus `?query`."""
        url = self.urls[service].copy_with(raw_path=raw_path)
        with _tracer.start_as_current_span(
            f"{method} {service}",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": method, "peer.service": f"petportal-{service}"},
        ) as span:
            outgoing = dict(headers)
            propagate.inject(outgoing)  # traceparent of this span (httpx is not auto-instrumented)
            try:
                response = await self.client.request(method, url, headers=outgoing, content=content)
            except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise UpstreamUnavailable(service) from exc
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(service) from exc
            except httpx.TransportError as exc:
                raise UpstreamUnavailable(service) from exc
            span.set_attribute("http.response.status_code", response.status_code)
        return UpstreamResponse(
            response.status_code, response_headers(response.headers.multi_items()), response.content
        )

    async def check_jwks(self) -> None:
        """Readiness: identity's signing keys can be fetched (without them no token verifies)."""
        response = await self.client.get(self.urls["identity"].join("/.well-known/jwks.json"))
        response.raise_for_status()
        if not response.json().get("keys"):
            raise ValueError("identity's JWKS has no keys")
