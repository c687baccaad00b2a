"""The gateway's upstream client against real uvicorn upstreams that misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from petportal_devkit.contracts import upstream_answer
from petportal_gateway.adapters.upstreams import PoolLimits, Timeouts, Upstreams, UpstreamUnavailable
from petportal_gateway.entrypoints.app import create_app
from petportal_gateway.settings import GatewaySettings

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
        async def work(request: Request) -> Response:
            self.calls[request.method] += 1
            self.working.set()
            await asyncio.sleep(0.05)
            answer = upstream_answer(
                "sync", request.method, "/work", json={"ok": True}, off_contract="a path of no service"
            )
            return Response(answer.content, answer.status_code, media_type="application/json")

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
        upstreams = Upstreams({"sync": url}, timeouts=Timeouts(request=5, connect=5), limits=PoolLimits(10))
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

    bad = await upstreams.forward("sync", "GET", b"/boom", {"authorization": "Bearer caller-0"})
    # Ten other callers, one after the other, first on the pooled connection uvicorn is about to close.
    statuses = [
        (
            await upstreams.forward("sync", "GET", b"/work", {"authorization": f"Bearer caller-{n}"})
        ).status_code
        for n in range(1, 11)
    ]

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


TODO = {"badge": 0, "items": []}
TODO_ANSWER = {**TODO, "help": {"live_chat": False, "booking_mode": None}}


@pytest.fixture(scope="module")
async def todo(server: Server) -> AsyncIterator[Any]:
    from .conftest import recording_upstream

    upstream = recording_upstream("todo", {"/api/v1/todo": TODO_ANSWER})
    async with server(upstream.app) as url:
        upstream.url = url
        yield upstream


def _gateway_settings(identity: Any, *, pets: str, todo: str, down: int, **overrides: Any) -> GatewaySettings:
    return GatewaySettings(
        environment="test",
        identity_url=identity.url,
        pets_url=pets,
        todo_url=todo,
        messaging_url=f"http://127.0.0.1:{down}",
        notify_url=f"http://127.0.0.1:{down}",
        sync_url=f"http://127.0.0.1:{down}",
        **overrides,
    )


async def _timed(client: httpx.AsyncClient, path: str, token: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    return response, time.monotonic() - started


async def test_a_stalled_part_of_the_home_screen_is_left_out_after_the_upstream_timeout(
    server: Server, identity: Any, todo: Any, stalled: str, unused_port: int, keys: Any
) -> None:
    # Proxied requests may take 5 s; a part of the home screen only 0.3 s.
    settings = _gateway_settings(
        identity,
        pets=stalled,
        todo=todo.url,
        down=unused_port,
        request_timeout_seconds=5,
        upstream_timeout_seconds=0.3,
    )
    async with server(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        response, took = await _timed(client, "/api/v1/home", keys.parent())

    assert response.status_code == 200
    assert response.json()["todo"] == TODO
    assert response.json()["pets"] is None
    assert took < 2


async def test_a_stalled_todo_fails_the_home_screen_fast_with_retry_after(
    server: Server, identity: Any, todo: Any, stalled: str, unused_port: int, keys: Any
) -> None:
    settings = _gateway_settings(
        identity,
        pets=todo.url,
        todo=stalled,
        down=unused_port,
        request_timeout_seconds=5,
        upstream_timeout_seconds=0.3,
    )
    async with server(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        response, took = await _timed(client, "/api/v1/home", keys.parent())

    assert response.status_code == 503
    assert response.json() == {"detail": "todo is unavailable"}
    assert int(response.headers["retry-after"]) >= 1
    assert took < 2


async def test_proxied_requests_to_a_stalled_or_down_upstream_are_504_and_503_with_retry_after(
    server: Server, identity: Any, todo: Any, stalled: str, unused_port: int, keys: Any
) -> None:
    settings = _gateway_settings(
        identity, pets=stalled, todo=todo.url, down=unused_port, request_timeout_seconds=0.5
    )
    async with server(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        slow, slow_took = await _timed(client, "/api/v1/pets", keys.parent())
        down, down_took = await _timed(client, "/api/v1/conversation", keys.parent())

    assert (slow.status_code, slow.json()) == (504, {"detail": "pets timed out"})
    assert int(slow.headers["retry-after"]) >= 1
    assert slow_took < 2
    assert (down.status_code, down.json()) == (503, {"detail": "messaging is unavailable"})
    assert int(down.headers["retry-after"]) >= 1
    assert down_took < 1


Answer = Callable[[int], tuple[bytes, bool] | None]


class RawUpstream:
    """A raw TCP upstream: reads each request's head, counts it, and answers `answer(n)` for the
    n-th request on that connection: the bytes to send and whether to keep the connection open
    afterwards (None: close it without answering)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        on_connection = 0
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                on_connection += 1
                reply = self.answer(on_connection)
                if reply is None:
                    break
                writer.write(reply[0])
                await writer.drain()
                if not reply[1]:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def raw_upstream(answer: Answer) -> AsyncIterator[tuple[RawUpstream, Upstreams]]:
    upstream = RawUpstream(answer)
    listener = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    upstreams = Upstreams({"sync": url}, timeouts=Timeouts(request=2, connect=2), limits=PoolLimits(10))
    await upstreams.start()
    try:
        yield upstream, upstreams
    finally:
        await upstreams.close()
        listener.close()
        await listener.wait_closed()


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def test_a_get_cut_off_on_a_connection_made_for_it_is_not_sent_again() -> None:
    async with raw_upstream(lambda n: None) as (upstream, upstreams):
        with pytest.raises(UpstreamUnavailable):
            await upstreams.forward("sync", "GET", b"/x", {})
    assert upstream.requests == 1


async def test_a_get_cut_off_on_a_pooled_connection_goes_again_on_a_new_one() -> None:
    # The second request on a connection is dropped unanswered, as by an upstream that closed its
    # idle end just as the request came in.
    async with raw_upstream(lambda n: (OK, True) if n == 1 else None) as (upstream, upstreams):
        assert (await upstreams.forward("sync", "GET", b"/x", {})).status_code == 200
        assert (await upstreams.forward("sync", "GET", b"/x", {})).status_code == 200  # sent twice
        assert upstream.requests == 3
        assert (await upstreams.forward("sync", "GET", b"/x", {})).status_code == 200  # a new pooled one
        with pytest.raises(UpstreamUnavailable):
            await upstreams.forward("sync", "POST", b"/x", {}, b"{}")  # the POST is not sent twice
    assert upstream.requests == 5


async def test_a_post_after_the_upstream_closed_the_idle_connection_arrives_once() -> None:
    # Answered without "Connection: close", then closed: the pooled connection is stale. Either the
    # client sees it closed before using it, or writing the POST fails and it goes again.
    async with raw_upstream(lambda n: (OK, False)) as (upstream, upstreams):
        assert (await upstreams.forward("sync", "GET", b"/x", {})).status_code == 200
        for _ in range(5):
            assert (await upstreams.forward("sync", "POST", b"/x", {}, b"{}")).status_code == 200
    assert upstream.requests == 6


async def test_an_answer_cut_off_in_its_body_is_503_and_not_sent_again() -> None:
    cut = b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial":'
    async with raw_upstream(lambda n: (cut, False)) as (upstream, upstreams):
        with pytest.raises(UpstreamUnavailable):
            await upstreams.forward("sync", "GET", b"/x", {})
    assert upstream.requests == 1


async def test_garbage_from_the_upstream_is_503() -> None:
    async with raw_upstream(lambda n: (b"SMTP ready\r\n\r\n", False)) as (upstream, upstreams):
        with pytest.raises(UpstreamUnavailable):
            await upstreams.forward("sync", "GET", b"/x", {})
    assert upstream.requests == 1


async def test_response_header_bytes_pass_through_as_they_are() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-name: caf\xc3\xa9\r\n"
        b"set-cookie: a=1\r\nset-cookie: b=2\r\n\r\n{}"
    )
    async with raw_upstream(lambda n: (answer, True)) as (_upstream, upstreams):
        response = await upstreams.forward("sync", "GET", b"/x", {})
    assert response.headers == [("x-name", "caf\xc3\xa9"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]
    assert [v.encode("latin-1") for n, v in response.headers if n == "x-name"] == [b"caf\xc3\xa9"]
