"""One service process, spawned → `/readyz` 200, for every service; and its resident memory.

The infrastructure is up before the clock starts: a fresh Tansu broker with the project's topics,
PostgreSQL with each database service's database already migrated, nx-27017, and identity (whose
JWKS the gateway's readiness checks). Each service is then started alone, `params.starts` times in
a row (the previous one stopped first), as `python -m petportal_<svc> serve`, and polled every
20 ms for `/healthz` (the process serves HTTP: imports, app and lifespan done) and `/readyz` (its
database, broker, MongoDB or JWKS answer). A consumer's Kafka group join is not part of either:
the subscriber joins in the background. The baseline is a bare uvicorn process answering HTTP,
started the same way in the same run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from petportal_devkit.devinfra import free_port
from petportal_runtime.catalog import CONSUMERS_STARTED, SERVICES, ServiceSpec

from .gateway_rps import _migrated_database
from .infra import Infra
from .report import BenchResult, Row
from .startup import bare_start, rss_mb

NAME = "service_startup"
TITLE = "each service alone: spawn → /readyz, and resident memory"
LOOPBACK = "127.0.0.1"
POLL_S = 0.02
TARGET_S = 2.0
TARGET_MB = 120.0


@dataclass
class Params:
    starts: int = 3
    bare_starts: int = 5
    timeout_s: float = 60

    @classmethod
    def quick(cls) -> Params:
        return cls(starts=1, bare_starts=2)


async def _start_once(
    infra: Infra, spec: ServiceSpec, env: dict[str, str], run: int, timeout_s: float
) -> dict[str, float | None]:
    proc, port = infra.service(spec.name, env, label=f"{spec.name}-start-{run}")
    base = f"http://{LOOPBACK}:{port}"
    proc.start()
    try:
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        healthz = await proc.wait_http_ok(f"{base}/healthz", timeout=left(), poll=POLL_S)
        readyz = await proc.wait_http_ok(f"{base}/readyz", timeout=left(), poll=POLL_S)
        memory = rss_mb(proc.pid)
        joined = None
        if spec.consumes:  # the group join, after ready (for information: not part of the target)
            joined = round(await proc.wait_logged(CONSUMERS_STARTED, timeout=left(), poll=POLL_S), 3)
        return {
            "healthz_s": round(healthz, 3),
            "readyz_s": round(readyz, 3),
            "consumers_started_s": joined,
            "rss_mb": memory,
        }
    finally:
        proc.stop()


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, dict(vars(params)))
    kafka = await infra.fresh_kafka("service-startup")
    common = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "KAFKA_SESSION_TIMEOUT_MS": "2000"}
    databases = {spec.name: await _migrated_database(infra, spec.name) for spec in SERVICES if spec.database}

    identity_port = free_port()
    identity_url = f"http://{LOOPBACK}:{identity_port}"
    keys = str(infra.workdir / "keys")
    identity, _ = infra.service(
        "identity",
        {**common, "DATABASE_URL": databases["identity"], "IDENTITY_URL": identity_url, "DEV_KEY_DIR": keys},
        port=identity_port,
    )
    identity.start()
    await identity.wait_http_ok(f"{identity_url}/readyz", timeout=params.timeout_s)

    def env(spec: ServiceSpec) -> dict[str, str]:
        values = {**common, "IDENTITY_URL": identity_url, "DEV_KEY_DIR": keys}
        if spec.database:
            values["DATABASE_URL"] = databases[spec.name]
        if spec.name == "todo":
            values |= {"MONGODB_URL": infra.mongo.url, "MONGODB_DATABASE": "bench_service_startup"}
        if spec.name == "gateway":
            values["METRICS_PORT"] = str(free_port())
        return values

    bare = [await bare_start() for _ in range(params.bare_starts)]
    bare_s = statistics.median(bare)
    starts: dict[str, list[dict[str, float | None]]] = {}
    for spec in SERVICES:
        starts[spec.name] = [
            await _start_once(infra, spec, env(spec), i, params.timeout_s) for i in range(params.starts)
        ]

    def median(name: str, key: str) -> float:
        return statistics.median(float(s[key] or 0) for s in starts[name])

    result.results = {
        "bare_uvicorn_start_to_http_s": [round(s, 3) for s in bare],
        "starts": starts,
        "median_readyz_s": {name: round(median(name, "readyz_s"), 3) for name in starts},
        "median_healthz_s": {name: round(median(name, "healthz_s"), 3) for name in starts},
        "rss_mb_at_ready": {name: round(median(name, "rss_mb"), 1) for name in starts},
    }
    result.ratios = {
        f"{name} readyz vs bare start": round(bare_s / median(name, "readyz_s"), 3) for name in starts
    }
    result.rows = [
        Row(
            f"{name}: spawn → /readyz (median)",
            median(name, "readyz_s"),
            "s",
            baseline="bare uvicorn start → HTTP",
            baseline_value=bare_s,
            ratio=result.ratios[f"{name} readyz vs bare start"],
            better="higher",
        )
        for name in starts
    ]
    result.rows.append(
        Row(
            "largest service RSS at ready",
            max(result.results["rss_mb_at_ready"].values()),
            "MB",
            better="lower",
        )
    )
    result.notes.append(f"targets (issue): each service ≤ {TARGET_S:g} s to /readyz, ≤ {TARGET_MB:g} MB")
    return result
