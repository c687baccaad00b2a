import httpx
import pytest

from petportal_devkit.contracts import upstream_answer
from petportal_gateway.adapters.upstreams import UpstreamError, Upstreams, request_headers, response_headers

pytestmark = pytest.mark.unit


def test_only_whitelisted_request_headers_are_forwarded_and_the_client_ip_is_ours() -> None:
    incoming = {
        "authorization": "Bearer t",
        "content-type": "application/json",
        "accept": "application/json",
        "x-petportal-signature": "sha256=ab",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "cookie": "session=secret",
        "connection": "keep-alive",
        "x-forwarded-for": "6.6.6.6",
        "host": "evil.example",
    }
    out = request_headers(incoming, "10.0.0.7")
    assert out == {
        "authorization": "Bearer t",
        "content-type": "application/json",
        "accept": "application/json",
        "x-petportal-signature": "sha256=ab",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-forwarded-for": "10.0.0.7",
    }


def test_hop_by_hop_and_connection_nominated_response_headers_are_stripped() -> None:
    upstream = [
        ("Content-Type", "application/json"),
        ("Connection", "close, X-Internal"),
        ("X-Internal", "1"),
        ("Transfer-Encoding", "chunked"),
        ("Keep-Alive", "timeout=5"),
        ("Content-Length", "10"),
        ("Content-Encoding", "gzip"),
        ("Retry-After", "3"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    assert response_headers(upstream) == [
        ("content-type", "application/json"),
        ("retry-after", "3"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]


class FailsOnce(httpx.AsyncBaseTransport):
    """The first request fails as httpcore would report it (its trace events, then the error)."""

    def __init__(self, events: list[str], error: type[httpx.TransportError]) -> None:
        self.events = events
        self.error = error
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) > 1:
            return upstream_answer("sync", request.method, "/x", off_contract="tests the retry, not sync")
        trace = request.extensions.get("trace")
        for event in self.events:
            if trace is not None:
                await trace(event, {})
        raise self.error("failed", request=request)


SENT = [
    "http11.send_request_headers.started",
    "http11.send_request_headers.complete",
    "http11.send_request_body.started",
    "http11.send_request_body.complete",
    "http11.receive_response_headers.started",
    "http11.receive_response_headers.failed",
]
BODY_NOT_SENT = [
    "http11.send_request_headers.started",
    "http11.send_request_headers.complete",
    "http11.send_request_body.started",
    "http11.send_request_body.failed",
    "http11.receive_response_headers.started",
    "http11.receive_response_headers.failed",
]
NEW_CONNECTION = ["connection.connect_tcp.started", "connection.connect_tcp.complete"]
CUT_IN_BODY = [*SENT[:5], "http11.receive_response_headers.complete", "http11.receive_response_body.failed"]


@pytest.mark.parametrize(
    ("method", "events", "error", "sent"),
    [
        # a pooled connection the peer had closed: idempotent requests go again
        ("GET", SENT, httpx.RemoteProtocolError, 2),
        ("DELETE", SENT, httpx.ReadError, 2),
        ("PUT", SENT, httpx.WriteError, 2),
        # a POST that was written whole may have been acted on: not repeated
        ("POST", SENT, httpx.RemoteProtocolError, 1),
        ("PATCH", SENT, httpx.ReadError, 1),
        # a POST whose body could not be written never reached the upstream whole
        ("POST", BODY_NOT_SENT, httpx.RemoteProtocolError, 2),
        # no connection was made: nothing was sent
        ("POST", ["connection.connect_tcp.started", "connection.connect_tcp.failed"], httpx.ConnectError, 2),
        # a new connection that failed is not a stale one
        ("GET", NEW_CONNECTION + SENT, httpx.RemoteProtocolError, 1),
        # the upstream had started to answer
        ("GET", CUT_IN_BODY, httpx.RemoteProtocolError, 1),
        # too slow: repeating would only double the wait
        ("GET", SENT, httpx.ReadTimeout, 1),
    ],
)
async def test_a_request_is_repeated_once_only_when_the_upstream_cannot_have_acted_on_it(
    method: str, events: list[str], error: type[httpx.TransportError], sent: int
) -> None:
    transport = FailsOnce(events, error)
    upstreams = Upstreams(
        {"sync": "http://sync.test"}, timeout=httpx.Timeout(1), limits=httpx.Limits(), transport=transport
    )
    await upstreams.start()
    try:
        if sent == 2:
            response = await upstreams.forward("sync", method, b"/x", {}, b"{}")
            assert response.status_code == 200
        else:
            with pytest.raises(UpstreamError):
                await upstreams.forward("sync", method, b"/x", {}, b"{}")
    finally:
        await upstreams.close()
    assert len(transport.requests) == sent
