"""A closed-loop HTTP/1.1 keep-alive load generator, run as its own process:

    python -m bench.loadgen --url http://127.0.0.1:P/api/v1/todo --header 'authorization: Bearer T' \
        --concurrency 32 --warmup 2 --duration 8

`concurrency` connections each send one GET, read the whole response, and send the next, until the
time is up (and never more than --max-requests in total). Only responses that complete after the
warm-up and before the end count. Prints one JSON line: requests, rps, status counts, latency
percentiles. Raw asyncio streams (uvloop when installed): the client costs far less CPU per request
than httpx, which matters when it shares 2 cores with the servers it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .stats import summarize_ms


class ProtocolError(Exception):
    pass


@dataclass
class Totals:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    responses: int = 0  # every complete response, warm-up included
    bytes_received: int = 0
    reconnects: int = 0


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """(status, body bytes, server keeps the connection open) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    length: int | None = None
    chunked = False
    keep_alive = parts[0] == "HTTP/1.1"
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection":
            keep_alive = "close" not in value
    if chunked:
        size = 0
        while True:
            chunk_len = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(chunk_len + 2)
            size += chunk_len
            if chunk_len == 0:
                break
        return status, size, keep_alive
    if length is None:
        raise ProtocolError("response without content-length or chunked encoding")
    await reader.readexactly(length)
    return status, length, keep_alive


async def connection_loop(
    host: str,
    port: int,
    request: bytes,
    *,
    measure_from: float,
    stop_at: float,
    budget: list[int],
    totals: Totals,
    timeout: float,
) -> None:
    """One keep-alive connection sending requests back to back; reconnects when the server closes."""
    while time.perf_counter() < stop_at and budget[0] > 0:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            totals.errors[f"connect: {type(exc).__name__}"] += 1
            await asyncio.sleep(0.1)
            continue
        try:
            while time.perf_counter() < stop_at and budget[0] > 0:
                budget[0] -= 1
                started = time.perf_counter()
                writer.write(request)
                totals.sent += 1
                status, size, keep_alive = await asyncio.wait_for(read_response(reader), timeout)
                finished = time.perf_counter()
                totals.responses += 1
                if measure_from <= finished <= stop_at:
                    totals.statuses[status] += 1
                    totals.bytes_received += size
                    if 200 <= status < 300:
                        totals.latencies.append(finished - started)
                if not keep_alive:
                    totals.reconnects += 1
                    break
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError, ValueError) as exc:
            if time.perf_counter() >= measure_from:
                totals.errors[type(exc).__name__] += 1
            totals.reconnects += 1
        finally:
            writer.close()


async def run_load(
    url: str,
    headers: Sequence[str],
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    max_requests: int,
    timeout: float,
) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise SystemExit("only http:// URLs")
    host, port = parts.hostname, parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json", *headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    totals = Totals()
    budget = [max_requests]
    begin = time.perf_counter()
    measure_from, stop_at = begin + warmup, begin + warmup + duration
    await asyncio.gather(
        *(
            connection_loop(
                host,
                port,
                request,
                measure_from=measure_from,
                stop_at=stop_at,
                budget=budget,
                totals=totals,
                timeout=timeout,
            )
            for _ in range(concurrency)
        )
    )
    measured = min(time.perf_counter(), stop_at) - measure_from
    ok = len(totals.latencies)
    return {
        "url": url,
        "concurrency": concurrency,
        "warmup_s": warmup,
        "duration_s": round(measured, 3),
        "requests_ok": ok,
        "rps": round(ok / measured, 1) if measured > 0 else None,
        "statuses": {str(k): v for k, v in sorted(totals.statuses.items())},
        "errors": dict(totals.errors),
        "reconnects": totals.reconnects,
        "sent_total": totals.sent,
        "responses_total": totals.responses,
        "loadgen_cpu_seconds": round(time.process_time(), 3),
        "budget_exhausted": budget[0] <= 0,
        "mean_body_bytes": round(totals.bytes_received / max(1, sum(totals.statuses.values())), 1),
        "latency": summarize_ms(totals.latencies),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--header", action="append", default=[], help="'name: value', repeatable")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--timeout", type=float, default=10.0, help="per request")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        run_load(
            args.url,
            args.header,
            concurrency=args.concurrency,
            warmup=args.warmup,
            duration=args.duration,
            max_requests=args.max_requests,
            timeout=args.timeout,
        )
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
