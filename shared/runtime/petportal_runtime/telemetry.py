"""OpenTelemetry tracing and metrics. Metrics are served in Prometheus format at /metrics (on the
service's port, or on its own `METRICS_PORT`)."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

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


def attach_trace_headers(headers: Mapping[str, str]) -> object:
    """Make the trace context in `headers` current; pass the token to context.detach()."""
    return context.attach(propagate.extract(dict(headers)))


def detach(token: object) -> None:
    context.detach(token)  # type: ignore[arg-type]


def meter(name: str) -> metrics.Meter:
    return metrics.get_meter(f"petportal.{name}")


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(f"petportal.{name}")
