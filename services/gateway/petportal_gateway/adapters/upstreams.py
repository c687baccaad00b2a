"""The one pooled HTTP client the gateway forwards through, with header hygiene and error mapping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry import propagate, trace

from petportal_runtime import telemetry
from petportal_runtime.logging import get_logger

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

# Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_tracer = telemetry.tracer("gateway")
log = get_logger(__name__)


class UpstreamError(Exception):
    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


class UpstreamUnavailable(UpstreamError):
    """Refused, unreachable, or the connection broke: 503."""


class UpstreamTimeout(UpstreamError):
    """Connected but did not answer in time: 504."""


class UnforwardableRequest(Exception):
    """httpx cannot send this request as it is (a client error: 400)."""


class _Attempt:
    """Records what httpcore's `trace` request extension reports about one attempt: event names such
    as "connection.connect_tcp.started" or "http11.send_request_headers.failed"."""

    def __init__(self) -> None:
        self.events: set[str] = set()

    async def __call__(self, event: str, _info: dict[str, Any]) -> None:
        self.events.add(event)

    def may_retry(self, method: str, exc: httpx.TransportError) -> bool:
        """Whether sending the request once more, on a new connection, is safe and worth it.

        - No connection could be made (ConnectError): nothing was sent, so yes, for any method.
        - The upstream had started to answer: no, it did receive the request.
        - The request failed on a pooled connection the peer had already closed (after keep-alive
          idleness, or after a 500 from an unhandled exception under uvicorn): the write fails, or
          the read ends before any response byte (RemoteProtocolError "Server disconnected without
          sending a response", ReadError on a reset). Idempotent methods: yes. Others only when
          writing the request failed (httpcore swallows that WriteError and goes on to read, so it
          shows only in the trace): the peer cannot have acted on a request it never fully got.
          Once the whole request was written the peer may have processed it, so a POST is not
          sent again.
        """
        if isinstance(exc, httpx.TimeoutException):
            return False  # repeating would double the wait
        if isinstance(exc, httpx.ConnectError):
            return True
        if not isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            return False
        if "http11.receive_response_headers.complete" in self.events:
            return False
        if "connection.connect_tcp.started" in self.events:
            return False  # it failed on a connection made for it, not on a stale pooled one
        if method in IDEMPOTENT_METHODS:
            return True
        return bool(self.events & {"http11.send_request_headers.failed", "http11.send_request_body.failed"})


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
        self._fresh: httpx.AsyncClient | None = None

    def _new_client(self, limits: httpx.Limits) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._timeout,
            limits=limits,
            transport=self._transport,
            follow_redirects=False,
            trust_env=False,
        )

    async def start(self) -> None:
        if self._client is None:
            self._client = self._new_client(self._limits)
            # Retries go through a pool that keeps no connection, so each one is made anew.
            self._fresh = self._new_client(
                httpx.Limits(max_connections=self._limits.max_connections, max_keepalive_connections=0)
            )

    async def close(self) -> None:
        for client in (self._client, self._fresh):
            if client is not None:
                await client.aclose()
        self._client = self._fresh = None

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
        """Send one request to `service`; raw_path is the still-encoded path plus `?query`.

        A request that failed on a connection the peer had already closed is sent once more on a
        new connection when that is safe (see `_Attempt.may_retry`).
        """
        try:
            url = self.urls[service].copy_with(raw_path=raw_path)
        except httpx.InvalidURL as exc:
            raise UnforwardableRequest(str(exc)) from exc
        with _tracer.start_as_current_span(
            f"{method} {service}",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": method, "peer.service": f"petportal-{service}"},
        ) as span:
            outgoing = dict(headers)
            propagate.inject(outgoing)  # traceparent of this span (httpx is not auto-instrumented)
            attempt = _Attempt()
            try:
                try:
                    response = await self.client.request(
                        method, url, headers=outgoing, content=content, extensions={"trace": attempt}
                    )
                except httpx.TransportError as exc:
                    if not attempt.may_retry(method, exc) or self._fresh is None:
                        raise
                    log.warning(
                        "retrying on a new connection",
                        upstream=service,
                        method=method,
                        error=type(exc).__name__,
                    )
                    span.add_event("retry", {"error.type": type(exc).__name__})
                    response = await self._fresh.request(method, url, headers=outgoing, content=content)
            except httpx.LocalProtocolError as exc:  # h11 would not write this request
                raise UnforwardableRequest(str(exc)) from exc
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
