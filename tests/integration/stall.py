"""A loopback TCP proxy in front of a real server, to make that server hang or vanish on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class StallingProxy:
    """Forwards connections to `connect()`. `stall()`: every byte is held and new connections are
    accepted but never answered (a hung server, a black-holed network). `down()`: the port refuses
    connections. `resume()`: the connections that saw the fault are dropped (as a server restart
    would) and forwarding starts again on the same port."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        await self._listen()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._drop_links()
        await self._close_listener()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _drop_links(self) -> None:
        for link in list(self._links):
            link.cancel()

    def stall(self) -> None:
        self._flowing.clear()

    async def down(self) -> None:
        self._drop_links()
        await self._close_listener()

    async def resume(self) -> None:
        self._drop_links()
        self._flowing.set()
        if self._server is None:
            await self._listen()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            await self._flowing.wait()
            up_reader, upstream = await self._connect()
            await asyncio.gather(self._pump(reader, upstream), self._pump(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass  # the link is over; the task was ours to cancel
        finally:
            self._links.discard(task)
            for end in (writer, upstream):
                if end is not None:
                    end.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await self._flowing.wait()
            writer.write(data)
            await writer.drain()
        writer.close()


def tcp(host: str, port: int) -> Connect:
    return lambda: asyncio.open_connection(host, port)


def postgres_through(url: str, proxy_port: int) -> str:
    """`url` (TCP or unix socket) rewritten to reach the same database through the proxy's port."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")])
    netloc = f"{user}@127.0.0.1:{proxy_port}" if user else f"127.0.0.1:{proxy_port}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def postgres_upstream(url: str) -> Connect:
    """Where the PostgreSQL server of `url` listens (a unix socket when the URL names a directory)."""
    parts = urlsplit(url)
    host = dict(parse_qsl(parts.query)).get("host") or parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    if host.startswith("/"):
        path = f"{host}/.s.PGSQL.{port}"
        return lambda: asyncio.open_unix_connection(path)
    return tcp(host, port)
