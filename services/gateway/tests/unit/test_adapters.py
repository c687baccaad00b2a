import pytest

from petportal_gateway.adapters.rate_limit import ClientRateLimiter
from petportal_gateway.adapters.upstreams import request_headers, response_headers

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


async def test_rate_limiter_counts_per_client_and_says_how_long_to_wait() -> None:
    limiter = ClientRateLimiter(per_minute=2)
    assert await limiter.hit("1.1.1.1") is None
    assert await limiter.hit("1.1.1.1") is None
    retry_after = await limiter.hit("1.1.1.1")
    assert retry_after is not None
    assert 1 <= retry_after <= 60
    assert await limiter.hit("2.2.2.2") is None  # another client has its own budget
