import gc
import json

import httpx
import pytest
from fastapi import APIRouter

from petportal_runtime.db import make_engine
from petportal_runtime.service import GC_THRESHOLDS, ServiceRuntime
from petportal_runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit


async def test_request_logs_name_the_route_not_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    router = APIRouter()

    @router.get("/clients/{client_id}")
    async def show(client_id: str) -> dict[str, str]:
        return {"ok": "yes"}

    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=False)
    app = runtime.create_app(title="unit", routers=[router])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        assert (await http.get("/clients/C-4242")).status_code == 200
        assert (await http.get("/nowhere")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200

    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert [(r["route"], r["status"]) for r in requests] == [
        ("/clients/{client_id}", 200),
        ("unmatched", 404),
    ]
    assert "C-4242" not in json.dumps(lines)


async def test_an_unhandled_exception_is_a_json_500_that_closes_the_connection() -> None:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=False)
    app = runtime.create_app(title="unit", routers=[router])
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/boom")

    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["connection"] == "close"


async def test_database_errors_never_print_query_parameters() -> None:
    engine = make_engine("postgresql+asyncpg://u@127.0.0.1:1/db")
    assert engine.sync_engine.hide_parameters
    await engine.dispose()


class NoSuchThing(LookupError):
    pass


class SlowDown(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many attempts")
        self.retry_after = retry_after


async def test_domain_errors_are_answered_with_the_status_mapped_once_at_app_creation() -> None:
    from petportal_runtime.errors import ErrorAnswer

    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def show(thing_id: str) -> None:
        raise NoSuchThing(f"no thing {thing_id}")

    @router.get("/busy")
    async def busy() -> None:
        raise SlowDown(7)

    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=False)
    errors = {NoSuchThing: 404, SlowDown: ErrorAnswer(429, lambda e: {"Retry-After": str(e.retry_after)})}
    app = runtime.create_app(title="unit", routers=[router], errors=errors)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        missing, slow = await http.get("/things/T-1"), await http.get("/busy")

    assert (missing.status_code, missing.json()) == (404, {"detail": "no thing T-1"})
    assert (slow.status_code, slow.json(), slow.headers["retry-after"]) == (
        429,
        {"detail": "too many attempts"},
        "7",
    )


async def test_a_refusal_names_its_field_and_an_invalid_value_is_a_validation_error() -> None:
    from petportal_runtime.errors import Refusal

    class Taken(Refusal):
        pass

    class TooLong(Refusal):
        pass

    router = APIRouter()

    @router.post("/taken")
    async def taken() -> None:
        raise Taken("slot_id", "someone else has it")

    @router.post("/long")
    async def long() -> None:
        raise TooLong("note", "a note is at most 5 characters")

    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=False)
    app = runtime.create_app(title="unit", routers=[router], errors={Taken: 409, TooLong: 422})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        conflict, invalid = await http.post("/taken"), await http.post("/long")

    assert (conflict.status_code, conflict.json()) == (
        409,
        {"detail": "someone else has it", "field": "slot_id"},
    )
    assert invalid.status_code == 422
    assert [(e["loc"], e["msg"]) for e in invalid.json()["detail"]] == [
        (["body", "note"], "a note is at most 5 characters")
    ]


def test_the_token_verifier_is_given_to_the_runtime_when_it_is_built() -> None:
    from petportal_runtime.auth import TokenVerifier

    verifier = TokenVerifier(None, static_jwks={"keys": []})
    settings = ServiceSettings(service_name="unit")
    assert (
        ServiceRuntime(settings, database=False, broker=False, token_verifier=verifier).token_verifier
        is verifier
    )


async def test_a_started_service_collects_cycles_at_its_own_thresholds() -> None:
    gc.set_threshold(700, 10, 10)
    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=False)
    try:
        await runtime.start()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        await runtime.stop()


async def test_stopping_closes_every_client_the_service_opened_even_when_one_fails() -> None:
    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=False)
    closed: list[str] = []

    async def smtp() -> None:
        closed.append("smtp")
        raise ConnectionResetError("already gone")

    async def http() -> None:
        closed.append("http")

    runtime.closing += [smtp, http]
    await runtime.start()
    assert closed == []
    await runtime.stop()
    assert closed == ["smtp", "http"]


async def test_http_does_not_wait_for_the_consumer_groups_and_a_failed_start_is_retried() -> None:
    import asyncio

    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=True)
    runtime.consumers_retry_seconds = 0.01
    broker = runtime.broker
    joined = asyncio.Event()
    attempts: list[str] = []

    async def connect() -> None:
        attempts.append("connect")

    async def start() -> None:
        attempts.append("start")
        if attempts.count("start") == 1:
            raise ConnectionError("group coordinator not available")
        await joined.wait()  # a group join that takes its time

    async def stop() -> None:
        attempts.append("stop")

    broker.connect, broker.start, broker.stop = connect, start, stop  # type: ignore[method-assign]
    await asyncio.wait_for(runtime.start(), 5)  # returns while the consumers are still starting
    assert attempts[0] == "connect"

    async def until(condition: object) -> None:
        for _ in range(500):
            if callable(condition) and condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not met in 5 s")

    await until(lambda: attempts.count("start") == 2)  # the failed start was tried again
    with pytest.raises(ConnectionError):  # not ready until a start succeeds
        await runtime.checks["consumers"]()
    joined.set()
    await until(lambda: runtime._consumers is not None and runtime._consumers.done())
    await runtime.checks["consumers"]()
    await runtime.stop()
    assert attempts[-1] == "stop"


async def test_a_failed_consumer_start_makes_the_service_not_ready_until_it_succeeds() -> None:
    runtime = ServiceRuntime(ServiceSettings(service_name="unit"), database=False, broker=True)
    runtime.consumers_retry_seconds = 60  # no retry during the test
    broker = runtime.broker

    async def nothing() -> None:
        return None

    async def fail() -> None:
        raise ConnectionError("no coordinator")

    broker.connect, broker.start, broker.stop = nothing, fail, nothing  # type: ignore[method-assign]
    await runtime.start()
    import asyncio

    for _ in range(500):
        if runtime._consumers_error is not None:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(ConnectionError, match="ConnectionError"):
        await runtime.checks["consumers"]()
    await asyncio.wait_for(runtime.stop(), 5)  # the backoff wait ends with the stop
