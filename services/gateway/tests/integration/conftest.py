"""Real HTTP servers on loopback ports: a fake identity (JWKS), two upstreams, and the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from petportal_devkit.contracts import upstream_answer
from petportal_devkit.testing import serve as serve_app


@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Upstream:
    url: str
    app: FastAPI
    seen: list[Seen] = field(default_factory=list)


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve(app: Any, **config: Any) -> contextlib.AbstractAsyncContextManager[str]:
    """The app under uvicorn on a free loopback port (yields its base URL). proxy_headers off: the
    test client is on loopback, which uvicorn otherwise trusts as a proxy."""
    return serve_app(app, startup_timeout=10, access_log=False, proxy_headers=False, **config)


def served(answer: httpx.Response) -> Response:
    """An answer built by `upstream_answer`, as the upstream app sends it."""
    return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))


def recording_upstream(name: str, answers: dict[str, Any]) -> Upstream:
    """Records every request. A GET of a path in `answers` gets that JSON body, checked against
    `name`'s OpenAPI snapshot; anything else gets an echo of what arrived (not a real answer of
    `name`, and said so), for tests of what the gateway forwards."""
    app = FastAPI()
    upstream = Upstream(url="", app=app)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def anything(request: Request) -> Response:
        body = await request.body()
        upstream.seen.append(
            Seen(request.method, request.url.path, request.url.query, body, dict(request.headers))
        )
        if request.url.path.endswith("/slow"):
            await asyncio.sleep(5)  # longer than the gateway's request timeout in these tests
        path = request.url.path
        if request.method == "GET" and path in answers:
            return served(upstream_answer(name, "GET", path, json=answers[path]))
        echo = {"service": name, "path": path, "query": request.url.query}
        return served(upstream_answer(name, request.method, path, json=echo, off_contract="an echo"))

    # Checked now, so a drifted fake fails where the test sets it up rather than inside the server.
    for path, answer in answers.items():
        upstream_answer(name, "GET", path, json=answer)
    return upstream


@pytest.fixture(scope="module")
def unused_port() -> int:
    """A loopback port nobody listens on: an upstream that is down."""
    sock = _bound_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(scope="module")
async def stalled() -> AsyncIterator[str]:
    """Base URL of an upstream that accepts connections and reads requests but never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    finally:
        for writer in writers:
            writer.close()
        listener.close()
        await listener.wait_closed()


@pytest.fixture(scope="module")
async def identity(keys: Any) -> AsyncIterator[Upstream]:
    upstream = recording_upstream("identity", {"/.well-known/jwks.json": keys.jwks})
    async with serve(upstream.app) as url:
        upstream.url = url
        yield upstream


@pytest.fixture(scope="module")
def server() -> Callable[[Any], AbstractAsyncContextManager[str]]:
    return serve
