import json
from collections.abc import Callable

import asyncpg
import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import APIRouter
from sqlalchemy import exc as sa_exc

from petportal_runtime.broker import BROKER
from petportal_runtime.db import DATABASE
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_runtime.unavailable import Dependency

pytestmark = pytest.mark.unit


class StoreDown(Exception):
    """Stands for a service's own driver error (todo registers PyMongo's)."""


def _orig(sqlstate: str) -> Exception:
    error = Exception("driver error")
    error.sqlstate = sqlstate  # type: ignore[attr-defined]
    return error


def _invalidated() -> sa_exc.DBAPIError:
    error = sa_exc.DBAPIError("SELECT 1", None, Exception("closed"))
    error.connection_invalidated = True
    return error


FAILURES: dict[str, tuple[Callable[[], BaseException], int, str | None]] = {
    "timeout": (TimeoutError, 503, "a dependency"),
    "refused": (lambda: ConnectionRefusedError(111, "Connect call failed"), 503, "a dependency"),
    "sa-operational": (lambda: sa_exc.OperationalError("SELECT 1", None, Exception()), 503, "database"),
    "sa-pool": (lambda: sa_exc.TimeoutError("QueuePool limit reached"), 503, "database"),
    "sa-invalidated": (_invalidated, 503, "database"),
    "sa-admin-shutdown": (lambda: sa_exc.DBAPIError("SELECT 1", None, _orig("57P01")), 503, "database"),
    "asyncpg-starting": (lambda: asyncpg.CannotConnectNowError("starting up"), 503, "database"),
    "kafka": (lambda: KafkaConnectionError("no broker"), 503, "broker"),
    "own-driver": (StoreDown, 503, "store"),
    "unique-violation": (lambda: sa_exc.IntegrityError("INSERT", None, _orig("23505")), 500, None),
    "bug": (lambda: ValueError("a bug"), 500, None),
}


async def test_dependency_failures_answer_503_with_retry_after_and_others_stay_500(
    capsys: pytest.CaptureFixture[str],
) -> None:
    router = APIRouter()

    @router.get("/fail/{kind}")
    async def fail(kind: str) -> None:
        raise FAILURES[kind][0]()

    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=False)
    runtime.dependencies += [DATABASE, BROKER, Dependency("store", (StoreDown,), ("nothing",))]
    app = runtime.create_app(title="unit", routers=[router])
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for kind, (_, status, dependency) in FAILURES.items():
            response = await http.get(f"/fail/{kind}")
            assert response.status_code == status, kind
            if status == 503:
                assert response.json() == {"detail": f"{dependency} temporarily unavailable"}, kind
                assert response.headers["retry-after"] == "5"
            else:
                assert "retry-after" not in response.headers

    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    warnings = [line for line in lines if line["event"] == "dependency unavailable"]
    assert [(w["error"], w["route"]) for w in warnings][:2] == [
        ("TimeoutError", "/fail/{kind}"),
        ("ConnectionRefusedError", "/fail/{kind}"),
    ]
    assert len(warnings) == sum(1 for _, status, _ in FAILURES.values() if status == 503)
