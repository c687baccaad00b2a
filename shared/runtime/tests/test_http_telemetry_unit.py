"""RequestTelemetryMiddleware: the server span, the duration histogram and the request log line."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from petportal_runtime.http_telemetry import RequestTelemetryMiddleware, error_type
from petportal_runtime.logging import configure_logging
from petportal_runtime.service import TELEMETRY, internal_error

pytestmark = pytest.mark.unit

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{CALLER_SPAN_ID:016x}-01"


class Refuse:
    """A middleware that answers 429 itself, as the gateway's rate limiter does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/refused":
            await JSONResponse({"detail": "too many requests"}, 429)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Recorded:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.app = FastAPI(telemetry=TELEMETRY, exception_handlers={Exception: internal_error})
        self.app.add_middleware(Refuse)

        @self.app.get("/clients/{client_id}")
        async def client(client_id: str) -> dict[str, str]:
            return {"client_id": client_id}

        @self.app.get("/broken")
        async def broken() -> None:
            raise LookupError("client C-1 has no phone +15005550100")

        @self.app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        self.asgi = RequestTelemetryMiddleware(
            self.app,
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.metrics]),
        )

    def client(self) -> httpx.AsyncClient:
        configure_logging("unit", "INFO")  # in the test: its lines go to the stdout capsys captures
        transport = httpx.ASGITransport(app=self.asgi, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://portal.test")

    def span(self) -> ReadableSpan:
        (span,) = self.spans.get_finished_spans()
        return span

    def duration_points(self) -> list[dict[str, Any]]:
        data = self.metrics.get_metrics_data()
        if data is None:
            return []
        return [
            {**dict(point.attributes or {}), "count": point.count}
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "http.server.request.duration"
            for point in metric.data.data_points  # type: ignore[union-attr]
        ]


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def request_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == "request"]


async def test_the_server_span_continues_the_callers_trace_and_names_the_route_not_the_path(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    async with recorded.client() as http:
        response = await http.get("/clients/C-40917?x=1", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200

    span = recorded.span()
    assert span.name == "GET /clients/{client_id}"
    assert span.kind == SpanKind.SERVER
    assert span.context is not None
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None
    assert span.parent.span_id == CALLER_SPAN_ID
    assert span.attributes == {
        "http.request.method": "GET",
        "http.route": "/clients/{client_id}",
        "http.response.status_code": 200,
    }
    assert span.status.status_code != StatusCode.ERROR
    assert recorded.duration_points() == [
        {
            "http.request.method": "GET",
            "http.route": "/clients/{client_id}",
            "http.response.status_code": 200,
            "count": 1,
        }
    ]
    (line,) = request_lines(capsys.readouterr().out)
    assert line["route"] == "/clients/{client_id}"
    assert line["status"] == 200
    assert line["trace_id"] == f"{TRACE_ID:032x}"
    assert line["span_id"] == f"{span.context.span_id:016x}"
    assert "C-40917" not in json.dumps(line)


async def test_without_a_caller_context_a_request_starts_its_own_trace(recorded: Recorded) -> None:
    async with recorded.client() as http:
        assert (await http.get("/clients/C-1", headers={"traceparent": "garbage"})).status_code == 200
    span = recorded.span()
    assert span.parent is None
    assert span.context is not None
    assert span.context.trace_id != TRACE_ID


async def test_an_unhandled_error_is_a_500_with_its_type_and_nothing_of_its_message(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    async with recorded.client() as http:
        response = await http.get("/broken")
    assert response.status_code == 500

    span = recorded.span()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "LookupError"
    assert span.attributes["http.response.status_code"] == 500
    assert [p["error.type"] for p in recorded.duration_points()] == ["LookupError"]
    out = capsys.readouterr()
    assert [(line["route"], line["status"]) for line in request_lines(out.out)] == [("/broken", 500)]
    assert "+15005550100" not in out.out + out.err


async def test_a_request_a_middleware_refuses_is_traced_counted_and_logged(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    async with recorded.client() as http:
        assert (await http.get("/refused")).status_code == 429
    span = recorded.span()
    assert span.name == "GET"  # no route was matched
    assert recorded.duration_points() == [
        {"http.request.method": "GET", "http.response.status_code": 429, "count": 1}
    ]
    assert [(line["route"], line["status"]) for line in request_lines(capsys.readouterr().out)] == [
        ("unmatched", 429)
    ]


async def test_a_method_a_client_made_up_is_recorded_as_other(recorded: Recorded) -> None:
    async with recorded.client() as http:
        assert (await http.request("BREW", "/clients/C-1")).status_code == 405
    assert [p["http.request.method"] for p in recorded.duration_points()] == ["_OTHER"]
    assert recorded.span().name.startswith("_OTHER")


async def test_probes_are_neither_traced_counted_nor_logged(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    async with recorded.client() as http:
        assert (await http.get("/healthz")).status_code == 200
    assert recorded.spans.get_finished_spans() == ()
    assert recorded.duration_points() == []
    assert request_lines(capsys.readouterr().out) == []


class OneHeaderPropagator(TextMapPropagator):
    """A propagator of another header than W3C's, as OTEL_PROPAGATORS may configure (B3, Jaeger...)."""

    def extract(
        self, carrier: Any, context: Context | None = None, getter: Getter[Any] = default_getter
    ) -> Context:
        (value,) = getter.get(carrier, "X-Test-Trace") or ("",)
        trace_id, span_id = (int(part, 16) for part in value.split("/"))
        parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return set_span_in_context(NonRecordingSpan(parent), context)

    def inject(
        self, carrier: Any, context: Context | None = None, setter: Setter[Any] = default_setter
    ) -> None:
        raise NotImplementedError

    @property
    def fields(self) -> set[str]:
        return {"X-Test-Trace"}


async def test_the_configured_propagators_headers_are_the_ones_read() -> None:
    default = propagate.get_global_textmap()
    propagate.set_global_textmap(OneHeaderPropagator())
    try:
        recorded = Recorded()
    finally:
        propagate.set_global_textmap(default)
    async with recorded.client() as http:
        headers = {"x-test-trace": f"{TRACE_ID:x}/{CALLER_SPAN_ID:x}", "traceparent": "ignored"}
        assert (await http.get("/clients/C-1", headers=headers)).status_code == 200
    span = recorded.span()
    assert span.context is not None
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None
    assert span.parent.span_id == CALLER_SPAN_ID


@pytest.mark.parametrize(
    "baggage",
    [
        "alice.smith@example.com ; x",  # not key=value
        "alice.smith\u00e9=1",  # a key that is not ASCII (the key is quoted)
        "k=" + "alice.smith@example.com," * 400,  # longer than a baggage header may be
    ],
)
async def test_a_malformed_baggage_header_never_reaches_a_log_line(
    recorded: Recorded, capsys: pytest.CaptureFixture[str], baggage: str
) -> None:
    async with recorded.client() as http:
        headers = {"baggage": baggage.encode("utf-8"), "traceparent": TRACEPARENT}
        assert (await http.get("/clients/C-1", headers=headers)).status_code == 200
    out = capsys.readouterr()
    assert "request" in out.out
    assert "alice.smith" not in out.out + out.err


def test_error_type_is_the_exception_or_a_5xx_status() -> None:
    assert error_type(None, 200) is None
    assert error_type(None, 404) is None
    assert error_type(None, 503) == "503"
    assert error_type(None, None) == "incomplete_response"
    assert error_type(TimeoutError(), 500) == "TimeoutError"
    assert error_type(json.JSONDecodeError("x", "", 0), None) == "json.decoder.JSONDecodeError"
