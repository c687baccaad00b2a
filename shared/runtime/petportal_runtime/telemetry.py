"""OpenTelemetry tracing and metrics. Metrics are served in Prometheus format at /metrics (on the
service's port, or on its own `METRICS_PORT`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import metrics, propagate, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind

_configured = False

# FastAPI's HTTP server metrics (stable semantic conventions) may also carry the scheme, the protocol
# version and, with other instrumentations, the Host header or server address: values a client can
# pick. Only these bounded attributes are kept; http.route is the route template
# (/clients/{client_id}), never the raw path.
HTTP_SERVER_METRIC_ATTRIBUTES = frozenset(
    {"http.request.method", "http.response.status_code", "http.route", "error.type"}
)
METRIC_VIEWS = (View(instrument_name="http.server.*", attribute_keys=set(HTTP_SERVER_METRIC_ATTRIBUTES)),)


def configure_telemetry(service: str, otlp_endpoint: str | None) -> None:
    """Install tracer and meter providers once per process."""
    global _configured
    if _configured:
        return
    resource = Resource.create({"service.name": f"petportal-{service}"})
    tracer_provider = TracerProvider(resource=resource)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(
        MeterProvider(
            resource=resource,
            metric_readers=[PrometheusMetricReader()],
            views=METRIC_VIEWS,
            # The Prometheus text format carries no exemplars: offering each measurement to a
            # reservoir would only cost time on every request and event.
            exemplar_filter=AlwaysOffExemplarFilter(),
        )
    )
    _configured = True


def current_trace_headers() -> dict[str, str]:
    """W3C trace context of the current span, to store with an outgoing event."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def meter(name: str) -> metrics.Meter:
    return metrics.get_meter(f"petportal.{name}")


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(f"petportal.{name}")


# The SDK keeps at most this many links on a span (OTEL_SPAN_LINK_COUNT_LIMIT's default).
MAX_LINKS = 128


@contextmanager
def batch_span(
    tracer: trace.Tracer,
    name: str,
    carriers: Sequence[Mapping[str, str]],
    attributes: Mapping[str, str | int],
    kind: SpanKind = SpanKind.PRODUCER,
) -> Iterator[Span]:
    """One span for a batch of messages, linked to each message's trace (OpenTelemetry's messaging
    conventions for a batch): `carriers` are the messages' W3C headers, those without one skipped."""
    links: list[Link] = []
    for carrier in carriers:
        if len(links) == MAX_LINKS:
            break
        if "traceparent" in carrier:
            span_context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
            if span_context.is_valid:
                links.append(Link(span_context))
    with tracer.start_as_current_span(
        name,
        kind=kind,
        links=links,
        attributes={**attributes, "messaging.batch.message_count": len(carriers)},
    ) as span:
        yield span
