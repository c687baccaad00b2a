"""One trace across every hop, and no personal data in any log, on real processes.

(The collector records a span under its own trace id and under the trace id of each of its links.)

The stack exports its spans over OTLP/HTTP (the standard environment variables) to a collector run
by the test, so what is checked is what an operator's collector would receive: a staff message
through the gateway → messaging → its outbox → Kafka → todo is one trace, and so is the parent's read.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from petportal_devkit.devinfra import free_port

from .stack import Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e

EMAIL = "jordan.quill@example.com"
PHONE = "+15005550177"
BODY = "Pepper's stitches come out on Tuesday"


class Collector:
    """An OTLP/HTTP trace receiver on loopback: (service, span name, kind, trace id) of every span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, int, str]] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers.get("content-length", 0))))
                for resource_spans in request.resource_spans:
                    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            service = attributes.get("service.name", "")
                            spans.append((service, span.name, span.kind, span.trace_id.hex()))
                            for link in span.links:
                                spans.append((service, f"{span.name} (link)", span.kind, link.trace_id.hex()))
                body = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def services_in(self, trace_id: str) -> set[str]:
        return {service for service, _name, _kind, trace in list(self.spans) if trace == trace_id}


@pytest.fixture(scope="module")
def traced(
    postgres_server_url: str, mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Collector]]:
    collector = Collector()
    collector.thread.start()
    stack = Stack(postgres_server_url, mongo_url, tmp_path_factory.mktemp("traced"))
    stack.base_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.url
    stack.base_env["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # export every 200 ms, not every 5 s
    try:
        stack.start()
        yield stack, collector
    finally:
        stack.stop()
        collector.server.shutdown()


def _traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def test_a_staff_message_and_the_parents_read_are_each_one_trace_across_every_hop(
    traced: tuple[Stack, Collector],
) -> None:
    stack, collector = traced
    portal = Portal(stack, "traced-clinic", sms_number="+15005550008")
    portal.push(contact("C-T1", PHONE) | {"email": EMAIL, "first_name": "Jordan", "last_name": "Quill"})
    staff, parent = portal.staff_token(), portal.parent_token("C-T1")

    sent_trace, traceparent = _traceparent()
    sent = portal.http.post(
        "/clinic/v1/clients/C-T1/messages",
        json={"body": BODY},
        headers={"authorization": f"Bearer {staff}", "traceparent": traceparent},
    )
    assert sent.status_code == 201, sent.text
    portal.wait_todo(parent, [("unread_messages", "You have 1 unread message")], "the message counted")
    # gateway → messaging (HTTP), messaging's outbox relay → Kafka → todo's consumer: one trace id.
    # todo consumes in batches, so its consumer span links each event's trace (OpenTelemetry's
    # messaging conventions for a batch) rather than having one parent.
    hops = {"petportal-gateway", "petportal-messaging", "petportal-todo"}
    span_kinds = {2, 3, 4, 5}  # server, client (the gateway's hop), producer, consumer

    def kinds() -> set[int]:
        return {kind for _s, _n, kind, trace in list(collector.spans) if trace == sent_trace}

    # Each process exports its spans in batches of its own: todo's consumer span may arrive before
    # messaging's producer span, so both are waited for.
    wait_for(
        lambda: hops <= collector.services_in(sent_trace) and span_kinds <= kinds(),
        what=f"spans of {hops}, of kinds {span_kinds}, in the trace",
    )
    assert span_kinds <= kinds()

    read_trace, traceparent = _traceparent()
    read = portal.http.get(
        "/api/v1/todo", headers={"authorization": f"Bearer {parent}", "traceparent": traceparent}
    )
    assert read.status_code == 200
    wait_for(
        lambda: {"petportal-gateway", "petportal-todo"} <= collector.services_in(read_trace),
        what="the read's spans in its trace",
    )


def test_no_log_line_of_any_process_holds_the_clients_personal_data(traced: tuple[Stack, Collector]) -> None:
    stack, _collector = traced
    portal = Portal(stack, "logs-clinic", sms_number="+15005550009")
    portal.push(contact("C-L1", "+15005550178") | {"email": "casey.lind@example.com", "last_name": "Lind"})
    staff, parent = portal.staff_token(), portal.parent_token("C-L1")
    assert portal.send_message(staff, "C-L1", "Milo's bloodwork is back").status_code == 201
    assert portal.send_message(staff, "C-L9", "to nobody").status_code == 404  # an error path too
    portal.wait_todo(parent, [("unread_messages", "You have 1 unread message")], "the message counted")
    assert portal.text("+15005550178", "STOP").status_code == 200

    secrets_seen = {}
    for log in sorted(Path(stack.logs).glob("*.log")):
        text = log.read_text(errors="replace")
        for value in (EMAIL, PHONE, BODY, "casey.lind@example.com", "5005550178", "Milo's bloodwork", "Lind"):
            if value in text:
                secrets_seen.setdefault(log.name, []).append(value)
    assert secrets_seen == {}
    assert os.path.getsize(Path(stack.logs) / "messaging.log") > 0  # the logs were written at all
