"""`python -m petportal_<service> serve|migrate|replay|...`: the same commands for every service."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import catalog
from .settings import ServiceSettings

if TYPE_CHECKING:
    from .service import ServiceRuntime


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
    arguments: Callable[[argparse.ArgumentParser], None] = field(default=lambda parser: None)


def run_cli(
    *,
    service: str,
    settings: Callable[[], ServiceSettings],
    runtime: Callable[[ServiceSettings], ServiceRuntime] | None = None,
    commands: Sequence[Command] = (),
    argv: Sequence[str] | None = None,
) -> int:
    """The service's commands; web server, alembic and broker are imported only by the command that
    uses them."""
    spec = catalog.service(service)
    migrations_dir = spec.migrations_dir()
    parser = argparse.ArgumentParser(prog=f"python -m petportal_{service}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API and the event consumers")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=spec.port)
    if migrations_dir is not None:
        sub.add_parser("migrate", help="apply database migrations")
    if runtime is not None:
        replay = sub.add_parser("replay", help="republish the events kept in the outbox")
        replay.add_argument("--since-hours", type=float, default=None)
    for extra in commands:
        extra.arguments(sub.add_parser(extra.name, help=extra.help))

    args = parser.parse_args(argv)
    if args.command == "serve":
        import uvicorn
        from prometheus_client import start_http_server

        metrics_port = settings().metrics_port
        # /metrics on a port of its own (a thread of prometheus_client's), when the API port is public.
        metrics_server = start_http_server(metrics_port, addr=args.host)[0] if metrics_port else None
        try:
            # access_log=False: ours logs each request (RequestTelemetryMiddleware); uvicorn's logger is also
            # disabled, but it would still format the client address and path of every request.
            uvicorn.run(
                spec.app_factory,
                factory=True,
                host=args.host,
                port=args.port,
                log_config=None,
                access_log=False,
            )
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
        return 0
    if args.command == "migrate" and migrations_dir is not None:
        from .migrations import upgrade

        upgrade(migrations_dir, settings().database_url)
        print(f"{service}: database is up to date")
        return 0
    if args.command == "replay" and runtime is not None:
        build = runtime
        count = asyncio.run(_replay(build(settings()), args.since_hours))
        print(f"{service}: replayed {count} events")
        return 0
    for extra in commands:
        if args.command == extra.name:
            return asyncio.run(extra.run(args))
    parser.error(f"unknown command {args.command}")
    return 2


async def _replay(rt: ServiceRuntime, since_hours: float | None) -> int:
    if rt.relay is None:
        return 0
    since = datetime.now(UTC) - timedelta(hours=since_hours) if since_hours else None
    await rt.broker.connect()
    try:
        return await rt.relay.replay(since)
    finally:
        await rt.broker.stop()
        if rt.engine is not None:
            await rt.engine.dispose()
