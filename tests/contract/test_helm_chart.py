"""The Helm chart lints, renders with its defaults and with a production-like set of values, and every
manifest it renders is valid against the Kubernetes API schemas of the oldest and the newest
Kubernetes it supports; values of the wrong type or with unknown keys fail at `helm template`
(values.schema.json).

`helm` comes from tests/tools/install_helm.py (`make test` runs it first; the fixture runs it too, so
`pytest -m contract` works alone); the schemas from the `kubernetes-validate` package.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from petportal_runtime.catalog import SERVICES

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "petportal"
PRODUCTION_VALUES = Path(__file__).parent / "helm_values" / "production.yaml"
# The chart's kubeVersion floor (Chart.yaml) and the newest the installed helm knows.
KUBERNETES_VERSIONS = ("1.25.0", "1.35.0")
REQUIRED = ("--set", "config.kafkaBootstrapServers=kafka-bootstrap.kafka:9092")
Manifest = dict[str, Any]
SECRET_VARIABLES = frozenset({"DATABASE_URL", "MONGODB_URL", "TWILIO_AUTH_TOKEN"})


@cache
def helm() -> str:
    out = subprocess.run(
        [sys.executable, str(REPO / "tests" / "tools" / "install_helm.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip().splitlines()[-1]


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120, check=False)


@cache
def _render(*args: str) -> tuple[Manifest, ...]:
    proc = run_helm("template", "petportal", str(CHART), "--namespace", "petportal", *args)
    assert proc.returncode == 0, proc.stderr
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(*args: str) -> tuple[Manifest, ...]:
    return _render(*args)


def render_production() -> tuple[Manifest, ...]:
    return _render("--values", str(PRODUCTION_VALUES))


def by_kind(manifests: tuple[Manifest, ...], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def assert_valid(manifests: tuple[Manifest, ...]) -> None:
    errors = []
    for manifest in manifests:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                name = f"{manifest['kind']}/{manifest['metadata']['name']}"
                errors.append(f"{name} on {version}: {exc.message}")
    assert errors == []


def test_helm_lint_passes_with_defaults_and_with_production_values() -> None:
    for args in (REQUIRED, ("--values", str(PRODUCTION_VALUES))):
        proc = run_helm("lint", "--strict", str(CHART), *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_manifest_rendered_with_the_defaults_is_valid() -> None:
    manifests = render(*REQUIRED)
    assert_valid(manifests)
    kinds = Counter(m["kind"] for m in manifests)
    assert kinds["Deployment"] == kinds["Service"] == len(SERVICES)
    assert kinds["Job"] == sum(spec.database for spec in SERVICES)


def test_every_manifest_rendered_with_production_values_is_valid() -> None:
    assert_valid(render_production())


def test_rendering_without_kafka_fails_with_the_reason() -> None:
    proc = run_helm("template", "petportal", str(CHART))
    assert proc.returncode != 0
    assert "config.kafkaBootstrapServers is required" in proc.stderr


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("gateway.replicas=two", "/gateway/replicas"),
        ("pets.port=80800", "/pets/port"),
        ("config.environment=staging", "/config/environment"),
        ("config.kafkaBootstrapServers=kafka", "/config/kafkaBootstrapServers"),
        ("gateway.replica=3", "additional properties 'replica' not allowed"),
        ("identity.database.enabled=yes", "/identity/database/enabled"),
    ],
)
def test_values_of_the_wrong_type_or_unknown_keys_fail_at_template(setting: str, complaint: str) -> None:
    proc = run_helm("template", "petportal", str(CHART), *REQUIRED, "--set", setting)
    assert proc.returncode != 0, f"{setting} rendered"
    assert complaint in proc.stderr


def test_the_chart_holds_one_deployment_per_service_on_the_catalog_port() -> None:
    deployments = by_kind(render(*REQUIRED), "Deployment")
    for spec in SERVICES:
        container = deployments[f"petportal-{spec.name}"]["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][:3] == ["python", "-m", spec.package]
        assert {"name": "http", "containerPort": spec.port, "protocol": "TCP"} in container["ports"]


def test_no_secret_value_is_rendered() -> None:
    """Secrets are referenced by name and key; the chart never makes a Secret nor inlines one."""
    for manifests in (render(*REQUIRED), render_production()):
        assert not by_kind(manifests, "Secret")
        for manifest in manifests:
            for container in _containers(manifest):
                for variable in container.get("env", []):
                    if variable["name"] in SECRET_VARIABLES:
                        assert "valueFrom" in variable, f"{manifest['metadata']['name']}: {variable} inlined"


def _containers(manifest: Manifest) -> list[dict[str, Any]]:
    spec = manifest.get("spec", {})
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec.get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _component(manifest: Manifest) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/component"])


def test_by_default_every_service_autoscales_and_has_a_disruption_budget() -> None:
    manifests = render(*REQUIRED)
    autoscalers, budgets = (
        by_kind(manifests, "HorizontalPodAutoscaler"),
        by_kind(manifests, "PodDisruptionBudget"),
    )
    for spec in SERVICES:
        name = f"petportal-{spec.name}"
        assert autoscalers[name]["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert budgets[name]["spec"]["maxUnavailable"] == 1
        # the autoscaler owns the count: an upgrade must not reset it
        assert "replicas" not in by_kind(manifests, "Deployment")[name]["spec"]
    assert autoscalers["petportal-gateway"]["spec"]["minReplicas"] == 2
    assert not by_kind(manifests, "Ingress")
    assert set(by_kind(manifests, "CronJob")) == {"petportal-sync-pims-reconciliation"}  # on by default


def test_with_autoscaling_off_the_deployments_keep_their_replicas() -> None:
    manifests = render_production()
    assert not by_kind(manifests, "HorizontalPodAutoscaler")
    deployments = by_kind(manifests, "Deployment")
    assert deployments["petportal-gateway"]["spec"]["replicas"] == 3
    assert deployments["petportal-todo"]["spec"]["replicas"] == 3
    assert by_kind(manifests, "PodDisruptionBudget")["petportal-gateway"]["spec"] == {
        "minAvailable": 2,
        "selector": {"matchLabels": deployments["petportal-gateway"]["spec"]["selector"]["matchLabels"]},
    }
    config = by_kind(manifests, "ConfigMap")["petportal-common"]["data"]
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "petportal-kafka-kafka-bootstrap.kafka.svc:9092"


def test_the_ingress_routes_to_the_gateway_only() -> None:
    (ingress,) = by_kind(render_production(), "Ingress").values()
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"petportal-gateway"}
    assert ingress["spec"]["tls"][0]["secretName"] == "portal-example-com-tls"


def test_network_policies_let_only_the_gateway_be_reached_from_outside() -> None:
    for manifests in (render(*REQUIRED), render_production()):
        policies = by_kind(manifests, "NetworkPolicy")
        deny = policies.pop("petportal-default-deny")
        assert deny["spec"]["policyTypes"] == ["Ingress"]
        assert "ingress" not in deny["spec"]
        release = deny["spec"]["podSelector"]["matchLabels"]
        assert {_component(p) for p in policies.values()} == {spec.name for spec in SERVICES}
        for policy in policies.values():
            component = _component(policy)
            api, *metrics = policy["spec"]["ingress"]
            assert api["ports"] == [{"port": "http", "protocol": "TCP"}]
            if component == "gateway":
                continue
            expected = (
                release if component == "identity" else {**release, "app.kubernetes.io/component": "gateway"}
            )
            assert api["from"] == [{"podSelector": {"matchLabels": expected}}], component
            assert [rule["ports"][0]["port"] for rule in metrics] == ["http"]
    default_gateway = by_kind(render(*REQUIRED), "NetworkPolicy")["petportal-gateway"]["spec"]["ingress"]
    assert "from" not in default_gateway[0], "by default the gateway takes connections from anywhere"
    assert default_gateway[1]["ports"][0]["port"] == "metrics"
    production_gateway = by_kind(render_production(), "NetworkPolicy")["petportal-gateway"]["spec"]["ingress"]
    assert production_gateway[0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


def test_the_pims_reconciliation_cronjob_runs_the_sync_command_with_its_secrets_by_reference() -> None:
    cronjobs = by_kind(render_production(), "CronJob")
    assert cronjobs["petportal-todo-todo-rebuild"]["spec"]["suspend"] is True
    cronjob = cronjobs["petportal-sync-pims-reconciliation"]
    assert "suspend" not in cronjob["spec"]
    assert cronjob["spec"]["schedule"] == "15 * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = _containers(cronjob)
    assert container["command"] == ["python", "-m", "petportal_sync", "reconcile"]
    assert container["env"] == [
        {
            "name": "INTERNAL_API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "petportal-internal", "key": "INTERNAL_API_TOKEN"}},
        },
        {
            "name": "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "petportal-sync-db", "key": "DATABASE_URL"}},
        },
    ]
    assert {"secretRef": {"name": "petportal-extra"}} in container["envFrom"]


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        (
            ("gateway.autoscaling.minReplicas=4", "gateway.autoscaling.maxReplicas=3"),
            "maxReplicas must be at least",
        ),
        (("ingress.enabled=true", "ingress.hosts=null"), "ingress.hosts"),
        (("cronJobs.pimsReconciliation.schedule=nightly",), "/cronJobs/pimsReconciliation/schedule"),
        (("cronJobs.pimsReconciliation.service=gateway",), "/cronJobs/pimsReconciliation/service"),
        (("networkPolicy.enabled=on",), "/networkPolicy/enabled"),
    ],
)
def test_inconsistent_values_fail_at_template(settings: tuple[str, ...], complaint: str) -> None:
    flags = [arg for setting in settings for arg in ("--set", setting)]
    proc = run_helm("template", "petportal", str(CHART), *REQUIRED, *flags)
    assert proc.returncode != 0, f"{settings} rendered"
    assert complaint in proc.stderr
