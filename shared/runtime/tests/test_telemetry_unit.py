import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from petportal_runtime.telemetry import MAX_LINKS, batch_span

pytestmark = pytest.mark.unit


def _traceparent(n: int) -> str:
    return f"00-{n:032x}-{n:016x}-01"


def test_a_batch_span_links_the_trace_of_every_message_that_has_one() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    carriers = [
        {"traceparent": _traceparent(1)},
        {"event_type": "X"},
        {"traceparent": "garbage"},
        {"traceparent": _traceparent(2)},
    ]

    with batch_span(provider.get_tracer("t"), "outbox send", carriers, {"messaging.system": "kafka"}):
        pass

    (span,) = exporter.get_finished_spans()
    assert span.name == "outbox send"
    assert span.kind == SpanKind.PRODUCER
    assert [link.context.trace_id for link in span.links] == [1, 2]
    assert span.attributes == {"messaging.system": "kafka", "messaging.batch.message_count": 4}


def test_a_batch_span_keeps_at_most_the_sdks_number_of_links() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    carriers = [{"traceparent": _traceparent(n)} for n in range(1, 501)]

    with batch_span(provider.get_tracer("t"), "outbox send", carriers, {}):
        pass

    (span,) = exporter.get_finished_spans()
    assert [link.context.trace_id for link in span.links] == list(range(1, MAX_LINKS + 1))
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 500
