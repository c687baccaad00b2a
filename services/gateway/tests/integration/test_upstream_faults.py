"""The gateway's upstream client against real uvicorn upstreams that misbehave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from petportal_gateway.adapters.upstreams import Upstreams, UpstreamUnavailable

pytestmark = pytest.mark.integration

Server = Callable[[Any], AbstractAsyncContextManager[str]]


class Flaky:
    """An upstream whose /boom raises, and whose /work counts its calls and answers after 50 ms.

    uvicorn closes a connection once an exception escapes the app, but Starlette has already sent
    the 500 as a keep-alive response, and uvicorn goes on serving that connection in between. Here
    the exception reaches uvicorn only once the next request on that connection is being handled
    (as when reporting the error takes a moment), so that request is always the one cut off.
    """

    def __init__(self) -> None:
        self.calls: dict[str, int] = {"GET": 0, "POST": 0}
        self.working = asyncio.Event()
        app = FastAPI()

        @app.get("/boom")
        async def boom() -> None:
            self.working.clear()
            raise RuntimeError("boom")

        @app.api_route("/work", methods=["GET", "POST"])
        async def work(request: Request) -> dict[str, bool]:
            self.calls[request.method] += 1
            self.working.set()
            await asyncio.sleep(0.05)
            return {"ok": True}

        async def slow_error_reporting(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await app(scope, receive, send)
            except Exception:
                await asyncio.wait_for(self.working.wait(), 5)
                raise

        self.app: ASGIApp = slow_error_reporting


@pytest.fixture
async def flaky(server: Server) -> AsyncIterator[tuple[Flaky, Upstreams]]:
    upstream = Flaky()
    async with server(upstream.app) as url:
        upstreams = Upstreams(
            {"sync": url},
            timeout=httpx.Timeout(5),
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=10),
        )
        await upstreams.start()
        try:
            yield upstream, upstreams
        finally:
            await upstreams.close()


async def test_one_callers_500_does_not_fail_the_next_callers_requests(
    flaky: tuple[Flaky, Upstreams],
) -> None:
    upstream, upstreams = flaky
    assert (await upstreams.forward("sync", "GET", b"/work", {})).status_code == 200

    bad = await upstreams.forward("sync", "GET", b"/boom", {})
    # Ten more requests, one after the other, on the pooled connection uvicorn is about to close.
    statuses = [(await upstreams.forward("sync", "GET", b"/work", {})).status_code for _ in range(10)]

    assert bad.status_code == 500
    assert statuses == [200] * 10
    assert upstream.calls["GET"] >= 11


async def test_a_post_the_upstream_may_have_received_is_not_sent_twice(
    flaky: tuple[Flaky, Upstreams],
) -> None:
    upstream, upstreams = flaky
    await upstreams.forward("sync", "GET", b"/boom", {})
    failed = 0
    for _ in range(10):
        try:
            await upstreams.forward("sync", "POST", b"/work", {}, b"{}")
        except UpstreamUnavailable:
            failed += 1

    # The POST cut off had reached the upstream: it is reported (503), not sent again.
    assert failed == 1
    assert upstream.calls["POST"] == 10
