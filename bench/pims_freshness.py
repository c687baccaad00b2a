"""pims_freshness: how soon a PIMS change reaches the parent, and what the ID card PDF costs.

The whole portal runs (the end-to-end tests' stack: every service, the embedded broker and
databases). A connector pushes one appointment at a time through the gateway at a steady rate; a
parent's client polls the pet's appointments through the gateway, and each appointment's latency is
push sent → first seen (commercial portals: minutes to days; target p99 < 1 s). Then the pet's ID card
PDF is requested by the load generator through the gateway (requests/s and p99), against the pet's
JSON page as the baseline of one authenticated pets read through the same path."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import httpx

from .infra import Infra
from .procs import ChildFailed
from .report import REPO_ROOT, BenchResult, Row
from .stats import ratio, summarize_ms

NAME = "pims_freshness"
TITLE = "PIMS push → visible to the parent through the gateway (p50/p99); ID card PDF requests/s and p99"


@dataclass(frozen=True)
class Params:
    pushes: int = 100
    push_rate_per_s: float = 10.0
    poll_interval_s: float = 0.02
    pdf_concurrency: int = 8
    warmup_s: float = 1.0
    duration_s: float = 6.0

    @classmethod
    def quick(cls) -> Params:
        return cls(pushes=20, duration_s=2.0)


def _stack_module() -> ModuleType:
    name = "petportal_bench_e2e_stack"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tests" / "e2e" / "stack.py")
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


async def _measure_freshness(gateway: str, api_key: str, token: str, params: Params) -> list[float]:
    seen: dict[str, float] = {}
    sent: dict[str, float] = {}
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=gateway, timeout=10, trust_env=False) as http:

        async def poll() -> None:
            deadline = time.monotonic() + params.pushes / params.push_rate_per_s + 30
            while not done.is_set() and time.monotonic() < deadline:
                response = await http.get(
                    "/api/v1/pets/P1/appointments", headers={"authorization": f"Bearer {token}"}
                )
                now = time.perf_counter()
                if response.status_code == 200:
                    for appointment in response.json()["appointments"]:
                        seen.setdefault(appointment["appointment_id"], now)
                if len(seen) >= params.pushes:
                    done.set()
                await asyncio.sleep(params.poll_interval_s)

        async def push() -> None:
            for i in range(params.pushes):
                appointment_id = f"A{i:05d}"
                record = {
                    "kind": "appointment",
                    "client_id": "C1",
                    "appointment_id": appointment_id,
                    "patient_id": "P1",
                    "starts_at": f"2031-01-{1 + i % 28:02d}T15:{i % 60:02d}:00Z",
                }
                sent[appointment_id] = time.perf_counter()
                response = await http.post(
                    "/pims/v1/records",
                    json={"pims": "cornerstone", "records": [record]},
                    headers={"authorization": f"Bearer {api_key}"},
                )
                if response.status_code != 200 or response.json()["accepted"] != 1:
                    raise ChildFailed(f"push refused: {response.status_code} {response.text[:200]}")
                await asyncio.sleep(1 / params.push_rate_per_s)

        await asyncio.gather(poll(), push())
    missing = set(sent) - set(seen)
    if missing:
        raise ChildFailed(f"{len(missing)} pushed appointments never became visible")
    return [seen[a] - sent[a] for a in sent]


async def _load(infra: Infra, label: str, url: str, token: str, params: Params) -> dict[str, Any]:
    args = ["--url", url, "--concurrency", str(params.pdf_concurrency)]
    args += ["--warmup", str(params.warmup_s), "--duration", str(params.duration_s)]
    args += ["--header", f"authorization: Bearer {token}"]
    proc = infra.child(f"loadgen-{label}", "bench.loadgen", args, {}, capture_stdout=True)
    proc.start()
    if await proc.wait_exit(params.warmup_s + params.duration_s + 60) != 0:
        raise ChildFailed(f"loadgen for {label} failed")
    result: dict[str, Any] = proc.stdout_json()
    if set(result["statuses"]) != {"200"}:
        raise ChildFailed(f"{label}: statuses {result['statuses']}")
    return result


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, asdict(params))
    module = _stack_module()
    server = infra.ensure_postgres()
    stack = module.Stack(server.server_url, infra.mongo.url, infra.workdir / "stack")
    stack.base_env["RATE_LIMIT_PER_MINUTE"] = "1000000000"  # one client IP sends all the load
    try:
        await asyncio.to_thread(stack.start)
        portal = await asyncio.to_thread(module.Portal, stack, "bench-fresh", pims="cornerstone")
        records = [
            {"kind": "contact", "client_id": "C1", "first_name": "Bench", "last_name": "Parent"},
            {
                "kind": "patient",
                "client_id": "C1",
                "patient_id": "P1",
                "name": "Rex",
                "species": "Canine",
                "microchip": "985112345678901",
            },
            {
                "kind": "vaccination",
                "client_id": "C1",
                "vaccination_id": "V1",
                "patient_id": "P1",
                "name": "Rabies (3 year)",
                "given_on": "2030-06-01",
                "rabies_tag": "RT-1",
            },
        ]
        await asyncio.to_thread(
            lambda: portal.http.post(
                "/pims/v1/records",
                json={"pims": "cornerstone", "records": records},
                headers={"authorization": f"Bearer {portal.api_key}"},
            )
        )
        token = await asyncio.to_thread(portal.parent_token, "C1")
        latencies = await _measure_freshness(stack.gateway, portal.api_key, token, params)
        freshness = summarize_ms(sorted(latencies))
        pdf = await _load(infra, "id-card-pdf", f"{stack.gateway}/api/v1/pets/P1/id-card.pdf", token, params)
        page = await _load(infra, "pet-page", f"{stack.gateway}/api/v1/pets/P1", token, params)
    finally:
        await asyncio.to_thread(stack.stop)
    result.results = {"freshness_ms": freshness, "id_card_pdf": pdf, "pet_page": page}
    result.ratios = {"pdf_vs_pet_page_rps": ratio(pdf["rps"], page["rps"])}
    result.rows = [
        Row("push → visible p50", freshness["p50_ms"], "ms"),
        Row(
            "push → visible p99",
            freshness["p99_ms"],
            "ms",
            "target",
            1000.0,
            ratio(freshness["p99_ms"], 1000.0),
            "lower",
        ),
        Row(
            "ID card PDF req/s",
            pdf["rps"],
            "req/s",
            "pet page (JSON) req/s",
            page["rps"],
            result.ratios["pdf_vs_pet_page_rps"],
            "higher",
        ),
        Row("ID card PDF p99", pdf["latency"]["p99_ms"], "ms"),
    ]
    result.notes.append(
        f"freshness: {params.pushes} appointments pushed one at a time at {params.push_rate_per_s}/s, "
        f"polled every {params.poll_interval_s * 1000:.0f} ms (latencies include up to one poll interval)"
    )
    return result
