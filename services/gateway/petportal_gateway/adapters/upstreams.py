"""The one pooled HTTP client the gateway forwards through, with header hygiene and error mapping.

The client is aiohttp's: a pool that hands out a kept-alive connection in constant time and a C
HTTP parser, about 75 us of CPU per request where httpx/httpcore took over a millisecond under
the gateway's concurrency (their pool scans every connection with a poll() on each request).

`Upstreams` decides what to do with a failure (retry once on a new connection, or 503/504); the
network below it is an `UpstreamSend`: `AiohttpSend` in production, a fake in tests. It reports how
an attempt failed with the `Attempt*` exceptions below, which say what the upstream can have seen.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
from opentelemetry import propagate, trace
from yarl import URL

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
    "x-twilio-signature",
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
    """The HTTP client cannot send this request as it is (a client error: 400)."""


# --- how one attempt failed, as an `UpstreamSend` reports it ---------------------------------------------


class AttemptError(Exception):
    """One attempt failed; the subclass says how far it got."""


class AttemptNotConnected(AttemptError):
    """No connection could be made: nothing was sent."""


class AttemptConnectTimeout(AttemptError):
    """No connection (or none free in the pool) in time: nothing was sent, but trying again would
    double the wait."""


class AttemptDisconnected(AttemptError):
    """The connection broke before any response header arrived.

    `new_connection`: it was made for this attempt (not a pooled one the peer may have closed).
    `written`: the request may have reached the upstream whole (False only when writing it failed).
    """

    def __init__(self, message: str, *, new_connection: bool, written: bool) -> None:
        super().__init__(message)
        self.new_connection = new_connection
        self.written = written


class AttemptCutOff(AttemptError):
    """The upstream had started to answer (or answered garbage): it did receive the request."""


class AttemptTimeout(AttemptError):
    """Connected, but the upstream did not answer (or finish answering) in time."""


class AttemptUnforwardable(AttemptError):
    """The client refused to write this request (a header or target it cannot send)."""


@dataclass(frozen=True)
class UpstreamRequest:
    method: str
    url: str  # absolute; the path and query still percent-encoded, exactly as received
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class UpstreamResponse:
    status_code: int
    headers: list[tuple[str, str]]
    content: bytes


# One attempt. `fresh`: on a new connection, not a pooled one (the retry).
UpstreamSend = Callable[[UpstreamRequest, bool], Awaitable[UpstreamResponse]]


def may_retry(method: str, exc: AttemptError) -> bool:
    """Whether sending the request once more, on a new connection, is safe and worth it.

    - No connection could be made: nothing was sent, so yes, for any method.
    - A timeout: no, repeating would double the wait.
    - The upstream had started to answer: no, it did receive the request.
    - The request failed on a pooled connection the peer had already closed (after keep-alive
      idleness, or after a 500 from an unhandled exception under uvicorn) before any response
      byte: idempotent methods, yes. Others only when writing the request failed: the peer cannot
      have acted on a request it never fully got. Once the whole request was written the peer may
      have processed it, so a POST is not sent again.
    - A connection made for this request that broke is not a stale one: no.
    """
    if isinstance(exc, AttemptNotConnected):
        return True
    if not isinstance(exc, AttemptDisconnected) or exc.new_connection:
        return False
    return method in IDEMPOTENT_METHODS or not exc.written


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


@dataclass(frozen=True)
class Timeouts:
    request: float  # waiting for a free connection, and for each read of the answer
    connect: float  # making a TCP connection


@dataclass(frozen=True)
class PoolLimits:
    max_connections: int
    # Below uvicorn's 5 s keep-alive timeout: an idle connection is dropped here before the
    # upstream closes it under a request.
    keepalive_expiry: float = 4.0


class _AttemptState:
    """What aiohttp's trace hooks tell about one attempt (passed as its trace_request_ctx)."""

    __slots__ = ("new_connection",)

    def __init__(self) -> None:
        self.new_connection = False


async def _on_connection_create(
    _session: aiohttp.ClientSession, ctx: SimpleNamespace, _params: aiohttp.TraceConnectionCreateStartParams
) -> None:
    state = ctx.trace_request_ctx
    if isinstance(state, _AttemptState):
        state.new_connection = True


def _write_refused(exc: BaseException) -> bool:
    """Whether aiohttp failed to hand (part of) the request to a connection it found closing: it
    raises ClientConnectionResetError from its writer, directly or (for a body, written by a task of
    its own) as the cause of a ClientOSError."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, aiohttp.ClientConnectionResetError):
            return True
        seen = seen.__cause__
    return False


# Not sent unless the client sent them: aiohttp's own User-Agent, Accept-Encoding (the body would
# come back compressed for nothing over the loopback) and Content-Type (application/octet-stream on
# a body without one).
_SKIPPED_AUTO_HEADERS = frozenset({"User-Agent", "Accept-Encoding", "Content-Type"})


class AiohttpSend:
    """The production `UpstreamSend`: one aiohttp session with a kept-alive pool, and one that opens a new
    connection per request (for retries)."""

    def __init__(self, timeouts: Timeouts, limits: PoolLimits) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.request, sock_connect=timeouts.connect, sock_read=timeouts.request
        )
        tracing = aiohttp.TraceConfig()
        tracing.on_connection_create_start.append(_on_connection_create)
        tracing.freeze()
        self._pooled = self._session(
            aiohttp.TCPConnector(
                limit=limits.max_connections, limit_per_host=0, keepalive_timeout=limits.keepalive_expiry
            ),
            tracing,
        )
        self._fresh = self._session(
            aiohttp.TCPConnector(limit=limits.max_connections, limit_per_host=0, force_close=True), None
        )

    def _session(
        self, connector: aiohttp.TCPConnector, tracing: aiohttp.TraceConfig | None
    ) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=True,
            skip_auto_headers=_SKIPPED_AUTO_HEADERS,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trace_configs=[tracing] if tracing else None,
        )
        # aiohttp repeats an idempotent request once on its own after a broken connection, new or
        # pooled; `Upstreams` decides that itself (`may_retry`). aiohttp's own test client turns it
        # off the same way.
        session._retry_connection = False
        return session

    async def close(self) -> None:
        await self._pooled.close()
        await self._fresh.close()

    async def __call__(self, request: UpstreamRequest, fresh: bool) -> UpstreamResponse:
        state = _AttemptState()
        try:
            url = URL(request.url, encoded=True)
        except ValueError as exc:
            raise AttemptUnforwardable(str(exc)) from exc
        session = self._fresh if fresh else self._pooled
        try:
            response = await session.request(
                request.method,
                url,
                headers=request.headers,
                data=request.content or None,
                allow_redirects=False,
                trace_request_ctx=state,
            )
        except aiohttp.ConnectionTimeoutError as exc:
            raise AttemptConnectTimeout(str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise AttemptNotConnected(str(exc)) from exc
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientConnectionResetError,
            aiohttp.ClientOSError,
        ) as exc:
            raise AttemptDisconnected(
                str(exc) or type(exc).__name__,
                new_connection=fresh or state.new_connection,
                written=not _write_refused(exc),
            ) from exc
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one
            raise AttemptTimeout(str(exc)) from exc
        except (aiohttp.InvalidURL, ValueError) as exc:  # a header or target aiohttp will not write
            raise AttemptUnforwardable(str(exc)) from exc
        except aiohttp.ClientError as exc:  # a malformed answer, or a connection lost while answering
            raise AttemptCutOff(f"{type(exc).__name__}: {exc}") from exc
        try:
            content = await response.read()
        except TimeoutError as exc:
            raise AttemptTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise AttemptCutOff(f"{type(exc).__name__}: {exc}") from exc
        finally:
            response.release()
        # Latin-1 both ways (here and in the proxy's answer) carries any header byte through as is.
        raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers]
        return UpstreamResponse(response.status, response_headers(raw), content)


class Upstreams:
    """Base URLs of the services and the shared connection pool (opened in the app's lifespan)."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeouts: Timeouts,
        limits: PoolLimits,
        send: UpstreamSend | None = None,
    ) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self._timeouts = timeouts
        self._limits = limits
        self._fake = send
        self._client: AiohttpSend | None = None
        self._send: UpstreamSend | None = send

    async def start(self) -> None:
        # The aiohttp sessions are made here, in the running loop that will use them.
        if self._fake is None and self._client is None:
            self._client = AiohttpSend(self._timeouts, self._limits)
            self._send = self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None
        self._send = self._fake

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
        new connection when that is safe (see `may_retry`).
        """
        send = self._send
        if send is None:
            raise RuntimeError("the gateway's HTTP client is not started")
        with _tracer.start_as_current_span(
            f"{method} {service}",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": method, "peer.service": f"petportal-{service}"},
        ) as span:
            outgoing = dict(headers)
            propagate.inject(outgoing)  # traceparent of this span (the client is not auto-instrumented)
            request = UpstreamRequest(
                method, self.urls[service] + raw_path.decode("latin-1"), outgoing, content
            )
            try:
                try:
                    response = await send(request, False)
                except AttemptError as exc:
                    if not may_retry(method, exc):
                        raise
                    log.warning(
                        "retrying on a new connection",
                        upstream=service,
                        method=method,
                        error=type(exc).__name__,
                    )
                    span.add_event("retry", {"error.type": type(exc).__name__})
                    response = await send(request, True)
            except AttemptUnforwardable as exc:
                raise UnforwardableRequest(str(exc)) from exc
            except AttemptTimeout as exc:
                raise UpstreamTimeout(service) from exc
            except AttemptError as exc:
                raise UpstreamUnavailable(service) from exc
            span.set_attribute("http.response.status_code", response.status_code)
        return response

    async def check_jwks(self) -> None:
        """Readiness: identity's signing keys can be fetched (without them no token verifies)."""
        if self._send is None:
            raise RuntimeError("the gateway's HTTP client is not started")
        url = f"{self.urls['identity']}/.well-known/jwks.json"
        response = await self._send(UpstreamRequest("GET", url, {"accept": "application/json"}, b""), False)
        if response.status_code != 200:
            raise ValueError(f"identity's JWKS answered {response.status_code}")
        jwks = json.loads(response.content)
        if not isinstance(jwks, dict) or not jwks.get("keys"):
            raise ValueError("identity's JWKS has no keys")
