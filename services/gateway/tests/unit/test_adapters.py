import pytest

from petportal_gateway.adapters.upstreams import (
    AttemptConnectTimeout,
    AttemptCutOff,
    AttemptDisconnected,
    AttemptError,
    AttemptNotConnected,
    AttemptTimeout,
    AttemptUnforwardable,
    PoolLimits,
    Timeouts,
    UnforwardableRequest,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    Upstreams,
    UpstreamTimeout,
    UpstreamUnavailable,
    request_headers,
    response_headers,
)

pytestmark = pytest.mark.unit

LIMITS = PoolLimits(max_connections=10)


def test_only_whitelisted_request_headers_are_forwarded_and_the_client_ip_is_ours() -> None:
    incoming = {
        "authorization": "Bearer t",
        "content-type": "application/json",
        "accept": "application/json",
        "x-twilio-signature": "c2lnbmF0dXJl",
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
        "x-twilio-signature": "c2lnbmF0dXJl",
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


class FailsOnce:
    """An `UpstreamSend` whose first attempt fails with `error`, as AiohttpSend reports it; then 200."""

    def __init__(self, error: AttemptError) -> None:
        self.error = error
        self.attempts: list[tuple[UpstreamRequest, bool]] = []

    async def __call__(self, request: UpstreamRequest, fresh: bool) -> UpstreamResponse:
        self.attempts.append((request, fresh))
        if len(self.attempts) > 1:
            return UpstreamResponse(200, [], b"")
        raise self.error


STALE = AttemptDisconnected("Server disconnected", new_connection=False, written=True)
NOT_WRITTEN = AttemptDisconnected("Cannot write to closing transport", new_connection=False, written=False)
NEW_CONNECTION = AttemptDisconnected("Server disconnected", new_connection=True, written=True)


@pytest.mark.parametrize(
    ("method", "error", "sent"),
    [
        # a pooled connection the peer had closed: idempotent requests go again
        ("GET", STALE, 2),
        ("DELETE", STALE, 2),
        ("PUT", STALE, 2),
        # a POST that was written whole may have been acted on: not repeated
        ("POST", STALE, 1),
        ("PATCH", STALE, 1),
        # a POST that could not be written never reached the upstream whole
        ("POST", NOT_WRITTEN, 2),
        # no connection was made: nothing was sent
        ("POST", AttemptNotConnected("refused"), 2),
        # a new connection that failed is not a stale one
        ("GET", NEW_CONNECTION, 1),
        # the upstream had started to answer
        ("GET", AttemptCutOff("payload"), 1),
        # too slow: repeating would only double the wait
        ("GET", AttemptTimeout("read"), 1),
        ("GET", AttemptConnectTimeout("connect"), 1),
    ],
)
async def test_a_request_is_repeated_once_only_when_the_upstream_cannot_have_acted_on_it(
    method: str, error: AttemptError, sent: int
) -> None:
    send = FailsOnce(error)
    upstreams = Upstreams({"sync": "http://sync.test"}, timeouts=Timeouts(1, 1), limits=LIMITS, send=send)
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
    assert len(send.attempts) == sent
    # the retry, if any, goes on a new connection
    assert [fresh for _request, fresh in send.attempts] == [False, True][:sent]


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (AttemptNotConnected("refused"), UpstreamUnavailable),
        (AttemptConnectTimeout("pool"), UpstreamUnavailable),
        (STALE, UpstreamUnavailable),
        (AttemptCutOff("payload"), UpstreamUnavailable),
        (AttemptTimeout("read"), UpstreamTimeout),
        (AttemptUnforwardable("header"), UnforwardableRequest),
    ],
)
async def test_a_failed_request_maps_to_503_504_or_400(error: AttemptError, raised: type[Exception]) -> None:
    async def fails(_request: UpstreamRequest, _fresh: bool) -> UpstreamResponse:
        raise error

    upstreams = Upstreams({"sync": "http://sync.test"}, timeouts=Timeouts(1, 1), limits=LIMITS, send=fails)
    with pytest.raises(raised):
        await upstreams.forward("sync", "GET", b"/x", {})


async def test_the_upstream_gets_the_raw_target_and_the_headers() -> None:
    send = FailsOnce(STALE)
    send.attempts.append((UpstreamRequest("GET", "", {}, b""), False))  # no failure
    upstreams = Upstreams({"sync": "http://sync.test:5/"}, timeouts=Timeouts(1, 1), limits=LIMITS, send=send)
    await upstreams.forward("sync", "GET", b"/a%2Fb?q=%20x", {"authorization": "Bearer t"})
    request, _fresh = send.attempts[-1]
    assert request.url == "http://sync.test:5/a%2Fb?q=%20x"
    assert request.headers["authorization"] == "Bearer t"
