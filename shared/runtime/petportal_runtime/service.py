"""What every service process is made of: database, broker, outbox relay, token verifier, and a
FastAPI app with health, metrics, tracing, request logs and the input checks of `edge`. Services
build one in bootstrap.py."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp
from tenacity import AsyncRetrying, RetryCallState, wait_exponential

from .auth import TokenVerifier
from .catalog import CONSUMERS_STARTED
from .edge import EDGE_DEPENDENCIES, install_edge
from .errors import ErrorStatuses, install_error_handlers
from .health import Check, health_router
from .http_telemetry import RequestTelemetryMiddleware
from .logging import configure_logging, get_logger
from .settings import ServiceSettings
from .telemetry import configure_telemetry
from .unavailable import Dependency, install_unavailable_handlers

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlmodel.ext.asyncio.session import AsyncSession

    from .broker import OutboxProducer
    from .db import SessionFactory
    from .inbox import InboxPurger
    from .outbox import OutboxRelay
    from .uow import SqlUnitOfWork

log = get_logger(__name__)

R = TypeVar("R")

BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


# FastAPI's own telemetry is off: RequestTelemetryMiddleware records the same server span and
# duration histogram for less CPU (see http_telemetry).
TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


class PortalAPI(FastAPI):
    """FastAPI with RequestTelemetryMiddleware around everything, the middlewares a service adds
    after create_app included: a request a middleware refuses (413, 429...) is traced, counted and
    logged like any other."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestTelemetryMiddleware(super().build_middleware_stack())


async def internal_error(_request: Request, _exc: Exception) -> Response:
    """The 500 for an unhandled exception. uvicorn closes the connection after one; saying so in the
    response keeps a client from sending its next request on it (and losing that one)."""
    return JSONResponse({"detail": "internal server error"}, status_code=500, headers={"Connection": "close"})


# The cyclic collector's thresholds in a running service (Python's default: 700, 10, 10). A request or
# a batch allocates and frees thousands of containers, almost none of them in cycles; by default
# that set off a young collection every few requests and a full one every few hundred (each walks
# everything made since start-up): 7 % of todo's and the gateway's CPU under the To-Do read's load,
# 9 % of sync's while ingesting; 1-3 % with these. Cycles are still collected, after 20,000 net
# allocations of containers instead of 700; peak resident memory under those loads was the same
# (todo 98 MB, sync 134 MB).
GC_THRESHOLDS = (20_000, 20, 20)


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        database: bool = True,
        broker: bool = True,
        token_verifier: TokenVerifier | None = None,
    ) -> None:
        """`token_verifier` checks the bearer tokens of requests; by default, against identity's JWKS."""
        configure_logging(settings.service_name, settings.log_level)
        configure_telemetry(settings.service_name, settings.otel_exporter_otlp_endpoint)
        self.settings = settings
        # A service without a database and a broker (the gateway) imports neither SQLAlchemy nor
        # FastStream: each costs start-up time and memory in every process.
        self.engine: AsyncEngine | None = None
        self.sessions: SessionFactory | None = None
        self.relay: OutboxRelay | None = None
        self.outbox_producer: OutboxProducer | None = None
        self.inbox_purger: InboxPurger | None = None
        self._broker: KafkaBroker | None = None
        if broker or database:
            from .broker import make_broker

            self._broker = make_broker(settings)
        if database:
            from .broker import outbox_producer
            from .db import make_engine, make_session_factory, replica_name
            from .inbox import InboxPurger
            from .outbox import OutboxRelay

            # Named per replica, so `pg_stat_activity` shows which one holds the relay lock.
            self.engine = make_engine(
                settings.database_url,
                timeout=settings.dependency_timeout_seconds,
                application_name=replica_name(settings.service_name),
            )
            self.sessions = make_session_factory(self.engine)
            self.inbox_purger = InboxPurger(self.sessions, settings.inbox_retention)
            self.outbox_producer = outbox_producer(settings)
            self.relay = OutboxRelay(
                self.sessions,
                self.outbox_producer.send_all,
                batch_size=settings.outbox_batch_size,
                retention=timedelta(hours=settings.outbox_retention_hours),
                lock_timeout=timedelta(seconds=settings.outbox_relay_lock_timeout_seconds),
            )
        self.token_verifier = token_verifier or TokenVerifier(
            f"{settings.identity_url.rstrip('/')}/.well-known/jwks.json"
        )
        self.background: list[BackgroundTask] = []
        # Clients of other systems (SMTP, HTTP) a service opened: closed when it stops.
        self.closing: list[Callable[[], Awaitable[None]]] = []
        if self.outbox_producer is not None:
            self.closing.append(self.outbox_producer.close)
        self.uses_broker = broker
        self.checks: dict[str, Check] = (
            {"broker": self._ping_broker, "consumers": self._check_consumers} if broker else {}
        )
        self._consumers: asyncio.Task[None] | None = None
        self._consumers_error: str | None = None
        self.consumers_retry_seconds = 1.0  # the first wait after a failed start; doubles, up to 30 s
        # What answers 503 when down; services add theirs (todo: MongoDB).
        self.dependencies: list[Dependency] = []
        if database:
            from .db import DATABASE

            self.dependencies.append(DATABASE)
        if self._broker is not None:
            from .broker import BROKER

            self.dependencies.append(BROKER)
        if self.engine is not None:
            from .db import ping

            engine = self.engine
            self.checks["database"] = lambda: ping(engine)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def broker(self) -> KafkaBroker:
        if self._broker is None:
            raise RuntimeError(f"{self.settings.service_name} has no broker")
        return self._broker

    async def _ping_broker(self) -> None:
        if not await self.broker.ping(timeout=self.settings.dependency_timeout_seconds):
            raise ConnectionError("broker unreachable")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A bare transaction (runtime tools, tests); events added to the outbox in it are relayed as
        soon as it commits. Use cases take a `unit_of_work` instead."""
        if self.sessions is None:
            raise RuntimeError(f"{self.settings.service_name} has no database")
        from .db import transaction

        async with transaction(self.sessions) as session:
            yield session
        if self.relay is not None:
            self.relay.wake()

    def unit_of_work(self, repositories: Callable[[AsyncSession], R]) -> SqlUnitOfWork[R]:
        """A unit of work with the service's repositories (see `petportal_runtime.uow`)."""
        if self.sessions is None:
            raise RuntimeError(f"{self.settings.service_name} has no database")
        from .uow import SqlUnitOfWork

        return SqlUnitOfWork(self.sessions, repositories, relay=self.relay)

    async def start(self) -> None:
        self._stop.clear()
        self._consumers_error = None
        if self.uses_broker:
            # The producer now: the outbox relay publishes with it and /readyz pings it. The consumers
            # join their groups in the background (`_start_consumers`).
            await self.broker.connect()
            self._consumers = asyncio.create_task(self._start_consumers())
        tasks: list[BackgroundTask] = list(self.background)
        if self.relay is not None:
            tasks.append(self.relay.run)
            tasks.append(self.relay.watch)
        if self.uses_broker and self.broker.subscribers:
            from .broker import ConsumerLag

            tasks.append(ConsumerLag(self.broker).run)
        if self.inbox_purger is not None:
            tasks.append(self.inbox_purger.run)
        self._tasks = [asyncio.create_task(task(self._stop)) for task in tasks]
        if not gc.get_freeze_count():  # once a process (tests start many)
            # What start-up made (modules, the app, clients) lives as long as the process: frozen
            # out of the cyclic collector's sight, a full collection (set off every few batches of
            # events or records) no longer walks all of it again (a tenth to a third of a
            # consumer's CPU, measured in sync and todo).
            gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info("service started")

    async def _start_consumers(self) -> None:
        """Start the subscribers, which join their consumer groups, without holding up HTTP: a join
        waits for the group's rebalance (seconds here, up to the session timeout on a cluster), and
        the service's reads and writes need none of it. Nothing is missed meanwhile: a new group
        starts at the earliest offset, a known one where it committed. A start that fails is
        reported by /readyz (`consumers`) and tried again, with backoff, until it succeeds (or the
        service stops, which cancels this task)."""

        def failed(state: RetryCallState) -> None:
            error = type(state.outcome.exception()).__name__ if state.outcome else "unknown"
            self._consumers_error = error
            in_s = state.next_action.sleep if state.next_action else None
            log.warning("consumers did not start; trying again", error=error, in_s=in_s)

        async for attempt in AsyncRetrying(
            wait=wait_exponential(multiplier=self.consumers_retry_seconds, max=30),
            before_sleep=failed,
            reraise=True,
        ):
            with attempt:
                try:
                    await self.broker.start()
                except Exception:
                    for subscriber in self.broker.subscribers:  # the next attempt starts them all
                        with contextlib.suppress(Exception):
                            await subscriber.stop()
                    raise
        self._consumers_error = None
        log.info(CONSUMERS_STARTED)

    async def consumers_started(self) -> None:
        """Wait until the subscribers have started (joined their groups): for tests and tools that
        publish right after start-up and need what they publish applied by this process."""
        if self._consumers is not None:
            await asyncio.shield(self._consumers)

    async def _check_consumers(self) -> None:
        if self._consumers_error is not None:
            raise ConnectionError(f"consumers did not start: {self._consumers_error}")

    async def stop(self) -> None:
        self._stop.set()
        if self._consumers is not None and not self._consumers.done():
            self._consumers.cancel()  # still joining its group
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumers
        self._consumers = None
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, 5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        if self.uses_broker:
            from .write_behind import drain_all

            # A batch being written behind its consumer commits (and its offsets) before the clients close.
            await drain_all(self.broker)
        for close in self.closing:
            try:
                await close()
            except Exception as exc:  # one client failing to close must not keep the others open
                log.warning("a client did not close cleanly", error=type(exc).__name__)
        if self.uses_broker:
            await self.broker.stop()
        if self.engine is not None:
            await self.engine.dispose()
        log.info("service stopped")

    def create_app(
        self,
        *,
        title: str,
        routers: Sequence[APIRouter] = (),
        on_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
        on_shutdown: Sequence[Callable[[], Awaitable[Any]]] = (),
        errors: ErrorStatuses | None = None,
    ) -> FastAPI:
        """`errors` maps the service's domain errors to HTTP answers, once for every route."""

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            for hook in on_startup:
                await hook()
            await self.start()
            try:
                yield
            finally:
                await self.stop()
                for hook in on_shutdown:
                    await hook()

        app = PortalAPI(
            title=title,
            lifespan=lifespan,
            exception_handlers={Exception: internal_error},
            telemetry=TELEMETRY,
            dependencies=EDGE_DEPENDENCIES,
        )
        app.state.runtime = self
        app.state.token_verifier = self.token_verifier
        install_unavailable_handlers(app, self.dependencies)
        install_error_handlers(app, errors or {})
        # The service's routes first: a request is matched against the routes in order, and the
        # health probes are asked for far less often than the service's own routes.
        for router in routers:
            app.include_router(router)
        app.include_router(health_router(self.checks, timeout=self.settings.dependency_timeout_seconds))

        if self.settings.metrics_port is None:

            @app.get("/metrics", include_in_schema=False)
            async def metrics() -> Response:
                return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        install_edge(
            app,
            max_body_bytes=self.settings.max_request_body_bytes,
            max_image_body_bytes=self.settings.max_image_body_bytes,
        )
        return app
