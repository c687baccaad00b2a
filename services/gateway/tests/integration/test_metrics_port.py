"""`python -m petportal_gateway serve`: /metrics is served on METRICS_PORT, never on the public port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from petportal_devkit.devinfra import free_port
from petportal_devkit.testing import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[tuple[str, str]]:
    port, metrics_port, nobody = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "METRICS_PORT": str(metrics_port),
        "IDENTITY_URL": f"http://127.0.0.1:{nobody}",
        "PETS_URL": f"http://127.0.0.1:{nobody}",
    }
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "petportal_gateway", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


async def test_metrics_are_served_on_their_own_port_and_labelled_by_route_only(
    gateway_process: tuple[str, str],
) -> None:
    public, metrics = gateway_process
    async with httpx.AsyncClient(timeout=5) as client:

        async def up() -> bool:
            try:
                return (await client.get(f"{public}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(up, within=30, interval=0.1)
        await client.get(f"{public}/api/v1/auth/dev-token", headers={"Host": "attacker-7f3a.example"})
        on_public = await client.get(f"{public}/metrics")
        exposition = (await client.get(f"{metrics}/metrics")).text

    assert on_public.status_code == 404
    assert "http_server_request_duration_seconds_count" in exposition
    assert 'http_route="/{path}"' in exposition  # the route template, not /api/v1/auth/dev-token
    assert "attacker-7f3a" not in exposition
    assert "dev-token" not in exposition
