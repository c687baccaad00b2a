"""Every metric the Grafana dashboards and alert rules query is one the services really export.

The whole stack runs as processes (tests/e2e/stack.py: the embedded Kafka, PostgreSQL and MongoDB),
some traffic goes through it (a PIMS push with a bad record, a staff message that reaches the To-Do
list, an event that cannot be parsed), and then each service's `/metrics` is scraped (the gateway's
on its METRICS_PORT). The names in every panel's and rule's PromQL must all be among the scraped
series' names: with their Prometheus suffixes (`_total`, `_bucket`, `_count`, `_sum`) and the
exporter's unit suffixes (`_seconds`), exactly as a query has to spell them.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from petportal_devkit.testing import run_sync
from petportal_runtime.catalog import SERVICES
from petportal_schemas import topics


def _e2e_stack() -> ModuleType:
    """tests/e2e/stack.py, the end-to-end tests' process stack (tests/ is no package to import from)."""
    name = "petportal_tests_e2e_stack"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "e2e" / "stack.py")
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


_stack_module = _e2e_stack()
Portal, Stack, contact, wait_for = (
    _stack_module.Portal,
    _stack_module.Stack,
    _stack_module.contact,
    _stack_module.wait_for,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONSUMER_GROUPS = {f"petportal-{spec.name}" for spec in SERVICES if spec.consumes}
GRAFANA = REPO / "deploy" / "grafana"

# Grafana's variables, replaced by values of the same kind before the query is parsed as PromQL.
_RANGE_VARIABLES = re.compile(r"\$__(?:rate_)?interval|\$__range")
_VARIABLES = re.compile(r"\$\{?\w+\}?")


def parse_promql(expr: str) -> promql_parser.Expr:
    """The query parsed by a real PromQL parser (a syntax error raises), Grafana's variables filled in."""
    text = _RANGE_VARIABLES.sub("5m", expr)
    text = _VARIABLES.sub(".*", text)  # only left inside label-matcher strings in our queries
    return promql_parser.parse(text)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(parse_promql(expr), visit, None)
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (service_name, le) (rate(http_server_request_duration_seconds_bucket"
        '{http_response_status_code=~"5.."}[$__rate_interval]) * on (job, instance) group_left (service_name)'
        ' max by (job, instance, service_name) (target_info{service_name=~"$service"}))) or vector(0)'
    )
    assert metric_names(expr) == {"http_server_request_duration_seconds_bucket", "target_info"}
    assert metric_names("max(petportal_kafka_consumer_lag) > 1e3 and up") == {
        "petportal_kafka_consumer_lag",
        "up",
    }


# One dashboard per concern beside the overview (docs/operations.md says which answers what).
DASHBOARDS = {
    "petportal-overview.json",
    "petportal-delivery.json",
    "petportal-freshness.json",
    "petportal-messaging.json",
    "petportal-sync.json",
}


def dashboard_files() -> list[Path]:
    return sorted((GRAFANA / "dashboards").glob("*.json"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside (collapsed) rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every dashboard panel target and every provisioned alert rule query."""
    for path in dashboard_files():
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict) and (
                match := re.search(r"label_values\((.*),\s*\w+\)", query["query"])
            ):
                yield f"{path.name}: variable {variable['name']}", match[1]
    for path in sorted((GRAFANA / "provisioning" / "alerting").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for query in rule["data"]:
                    if query["datasourceUid"] != "__expr__":
                        yield f"{path.name}: {rule['title']}", query["model"]["expr"]


def test_every_dashboard_panel_and_alert_rule_has_a_query() -> None:
    found = list(queries())
    # lag, outbox, dead letters, 5xx, deliveries, the outbound queue
    assert len({where for where, _ in found if "alerts" in where}) >= 6
    assert all(metric_names(expr) for _, expr in found)


def test_every_dashboard_is_checked_and_provisioned() -> None:
    files = dashboard_files()
    assert {path.name for path in files} == DASHBOARDS
    dashboards = [json.loads(path.read_text()) for path in files]
    assert len({d["uid"] for d in dashboards}) == len(dashboards)
    for path, dashboard in zip(files, dashboards, strict=True):
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(ids) == len(set(ids)), path.name
        for panel in panels(dashboard):
            if panel["type"] != "row":  # every graph has a query, so the scrape below checks it
                assert any(t.get("expr") for t in panel.get("targets", [])), f"{path.name}: {panel['title']}"
    # one file provider loads every file of deploy/grafana/dashboards (mounted at its path)
    provisioning = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml").read_text())
    [provider] = provisioning["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


@pytest.fixture(scope="module")
def stack(
    postgres_server_url: str, mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(postgres_server_url, mongo_url, tmp_path_factory.mktemp("metrics"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def scrape(stack: Stack) -> dict[str, list[Sample]]:
    """{service: samples} from every service's /metrics (the gateway's on its own port)."""
    scraped = {}
    for spec in SERVICES:
        port = stack.metrics_port if spec.name == "gateway" else stack.ports[spec.name]
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        response.raise_for_status()
        scraped[spec.name] = [s for f in text_string_to_metric_families(response.text) for s in f.samples]
    return scraped


async def _publish_garbage(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topics.MESSAGING, b"not an envelope", key=b"metrics-clinic:C-9")
    finally:
        await producer.stop()


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def test_every_metric_queried_by_the_dashboards_and_alerts_is_exported(stack: Stack) -> None:
    portal = Portal(stack, f"metrics-{uuid.uuid4().hex[:6]}")
    starts = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    pushed = portal.push(
        contact("C-1", "+15005550111"),
        {"kind": "contact", "client_id": "C-2", "first_name": "No"},
        {"kind": "patient", "client_id": "C-1", "patient_id": "P-1", "name": "Rex", "species": "dog"},
        {"kind": "clinic_settings", "booking_mode": "direct"},
        {"kind": "slot", "slot_id": "S-1", "starts_at": starts},
    )
    assert pushed["accepted"] == 4
    staff, parent = portal.staff_token(), portal.parent_token("C-1")
    # an online booking the connector pulls and acknowledges (the outbound queue's metrics)
    booked = portal.http.post(
        "/api/v1/booking/bookings",
        json={"clinic_id": portal.clinic_id, "slot_id": "S-1", "patient_id": "P-1"},
        headers={"authorization": f"Bearer {parent}"},
    )
    assert booked.status_code == 201, booked.text
    connector = {"authorization": f"Bearer {portal.api_key}"}
    acked = portal.http.post(
        f"/pims/v1/outbound/{booked.json()['booking_id']}/ack", json={}, headers=connector
    )
    assert acked.status_code == 200, acked.text
    assert portal.send_message(staff, "C-1", "Rex is due for his booster").status_code == 201
    portal.wait_todo(
        parent, [("unread_messages", "You have 1 unread message")], "the message on the To-Do list"
    )
    run_sync(_publish_garbage(stack.kafka.bootstrap))

    def settled() -> dict[str, list[Sample]] | None:
        scraped = scrape(stack)
        every = [s for samples in scraped.values() for s in samples]
        dead = _value(scraped["todo"], "petportal_dead_letters_total", reason="invalid_envelope")
        groups = {s.labels["consumer_group"] for s in every if s.name == "petportal_kafka_consumer_lag"}
        outbound = any(s.name == "petportal_sync_outbound_items" for s in scraped["sync"])
        return scraped if dead >= 1 and groups == CONSUMER_GROUPS and outbound else None

    scraped: dict[str, list[Sample]] = wait_for(
        settled, timeout=45, what="a dead letter and consumer lag exported"
    )
    exported = {s.name for samples in scraped.values() for s in samples}

    missing: dict[str, set[str]] = {}
    for where, expr in queries():
        if absent := metric_names(expr) - exported:
            missing.setdefault(where, set()).update(absent)
    assert missing == {}, f"queried but not exported: {missing}"

    # the series carry the labels the queries group by
    lag = [s for samples in scraped.values() for s in samples if s.name == "petportal_kafka_consumer_lag"]
    assert {"consumer_group", "topic", "partition"} <= set(lag[0].labels)
    for spec in SERVICES:
        info = [s for s in scraped[spec.name] if s.name == "target_info"]
        assert info, spec.name
        assert info[0].labels["service_name"] == f"petportal-{spec.name}"
        if spec.database:
            assert _value(scraped[spec.name], "petportal_outbox_unpublished") >= 0
            assert any(
                s.name == "petportal_outbox_oldest_unpublished_age_seconds" for s in scraped[spec.name]
            )
    assert _value(scraped["messaging"], "petportal_outbox_published_total") >= 1
    assert _value(scraped["sync"], "petportal_sync_rejected_records_total") >= 1
    assert _value(scraped["sync"], "petportal_sync_accepted_records_total") >= 1
    sync_records = [
        s
        for s in scraped["sync"]
        if s.name.startswith("petportal_sync_") and s.name.endswith("_records_total") and s.value
    ]
    assert sync_records
    assert all(s.labels.get("pims") == "ezyvet" for s in sync_records)  # the clinic's PIMS (stack.py)
    statuses: dict[str, Any] = {
        s.labels.get("http_response_status_code")
        for s in scraped["gateway"]
        if s.name == "http_server_request_duration_seconds_count"
    }
    assert "201" in statuses
    assert _value(scraped["sync"], "petportal_sync_bookings_total", outcome="confirmed") == 1
    assert (
        _value(scraped["sync"], "petportal_sync_outbound_answers_total", kind="booking", status="acked") == 1
    )
