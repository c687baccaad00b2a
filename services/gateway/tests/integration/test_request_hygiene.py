"""Requests an attacker can send, as raw bytes to the real gateway under uvicorn: each gets a specific
4xx, never a 500, and none of the refused ones reaches an upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from petportal_gateway.entrypoints.app import create_app
from petportal_gateway.settings import GatewaySettings

from .conftest import Upstream, recording_upstream

pytestmark = pytest.mark.integration

Server = Callable[..., AbstractAsyncContextManager[str]]
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
async def upstream(server: Server) -> AsyncIterator[Upstream]:
    upstream = recording_upstream("any", {})
    async with server(upstream.app) as url:
        upstream.url = url
        yield upstream


# Both of uvicorn's HTTP parsers: they disagree on what reaches the app.
@pytest.fixture(scope="module", params=["httptools", "h11"])
async def gateway(request: pytest.FixtureRequest, server: Server, identity: Any, upstream: Upstream) -> Any:
    settings = GatewaySettings(
        environment="test",
        identity_url=identity.url,
        **{f"{svc}_url": upstream.url for svc in ("pets", "messaging", "todo", "sync", "notify")},
        rate_limit_per_minute=100_000,
        max_body_bytes=MAX_BODY,
    )
    async with server(create_app(settings), http=request.param) as url:
        yield url


async def send_raw(url: str, request: bytes) -> int:
    """The status code of the answer to `request`, sent as is on a new connection."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    return int(status_line.split()[1])


def get(target: bytes, headers: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: gateway\r\n" + headers + b"Connection: close\r\n\r\n"


def post(target: bytes, headers: bytes, body: bytes) -> bytes:
    length = b"Content-Length: %d\r\n" % len(body)
    return b"POST " + target + b" HTTP/1.1\r\nHost: gateway\r\n" + headers + length + b"\r\n" + body


ATTACKS = {
    "invalid percent-encoding": (get(b"/pims/v1/records/%zz"), 400),
    "truncated percent-encoding": (get(b"/pims/v1/records/%"), 400),
    "percent-encoded bytes that are not UTF-8": (get(b"/pims/v1/records/%ff%fe"), 400),
    "NUL in the path": (get(b"/pims/v1/records/a%00b"), 400),
    "NUL in the query": (get(b"/pims/v1/rejections?since=%00"), 400),
    "CR LF in the query": (get(b"/pims/v1/rejections?x=%0d%0aSet-Cookie:%20a=b"), 400),
    "encoded dot segments": (get(b"/pims/v1/%2e%2e/%2e%2e/api/v1/todo"), 404),
    "encoded slashes and dots": (get(b"/api/v1/auth/..%2f..%2fapi/v1/account"), 404),
    "a 9 KiB path": (get(b"/pims/v1/" + b"a" * 9000), 414),
    "non-ASCII Authorization": (get(b"/pims/v1/rejections", b"Authorization: Bearer \xff\xfe\r\n"), 400),
    "non-ASCII Accept": (get(b"/pims/v1/rejections", b"Accept: text/\xe9\r\n"), 400),
    "non-ASCII signature": (
        post(b"/webhooks/sms/inbound", b"X-Twilio-Signature: \xe9\r\n", b"Body=STOP"),
        400,
    ),
    "non-ASCII Content-Type": (
        post(b"/pims/v1/records", b"Content-Type: application/json; x=\xe9\r\n", b"{}"),
        400,
    ),
    "40 KiB of headers": (get(b"/pims/v1/rejections", b"X-Padding: " + b"a" * 40_000 + b"\r\n"), 431),
    "a body over MAX_BODY_BYTES": (post(b"/pims/v1/records", b"", b"x" * (MAX_BODY + 1)), 413),
    "a trailing slash on home": (get(b"/api/v1/home/"), 308),
}


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_hostile_requests_get_a_specific_4xx_and_reach_no_upstream(
    gateway: str, upstream: Upstream, name: str
) -> None:
    request, expected = ATTACKS[name]
    upstream.seen.clear()
    assert await send_raw(gateway, request) == expected
    assert upstream.seen == []


async def test_the_same_paths_well_formed_are_forwarded(gateway: str, upstream: Upstream) -> None:
    async def too_much() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse it by
        yield b"x" * MAX_BODY
        yield b"x"

    upstream.seen.clear()
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.get("/pims/v1/records/%C3%A9t%C3%A9", params={"since": "2026-01-01"})
        chunked = await client.post("/pims/v1/records", content=too_much())
    assert response.status_code == 200
    assert upstream.seen[0].path == "/pims/v1/records/été"
    assert chunked.status_code == 413
    assert len(upstream.seen) == 1
