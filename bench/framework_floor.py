"""Diagnostic floors inside the services' own stack, for `gateway_todo_rps`: what FastAPI and the
gateway's HTTP client cost before any of the services' guarantees (token checks, tracing, metrics,
request logs, rate limits, input checks) are added.

- `read`: a FastAPI app, no middleware, one async route that makes todo's read (the same aggregate as
  `bench.bare_app`) and answers the same small body as the bare app. Its ratio to the bare app is
  the best `todo` could reach on FastAPI.
- `proxy`: a FastAPI app, no middleware, one route that forwards the GET to an upstream with the
  gateway's client (one keep-alive `aiohttp` session) and answers its body. In front of `read`, its
  ratio to the bare app is the best the gateway → todo path could reach on FastAPI and aiohttp.
- `ingest`, for `sync_ingest`: a FastAPI app, no middleware, one route taking a batch of canonical
  PIMS records as sync's API does: each record validated by sync's own models, then in one
  transaction the records' rows and one outbox row per record (an envelope around the record) are
  written with COPY. No authentication, no clinic lock, no comparison with what is stored (so no
  versions, no idempotency), no rejected-record quarantine, no relay to Kafka: what any API storing
  these records with their events must do at least.

    python -m bench.framework_floor read --port P --mongodb-url URL --database DB --clinic-id C \
        --client-id K
    python -m bench.framework_floor proxy --port P --upstream http://127.0.0.1:Q
    python -m bench.framework_floor ingest --port P --database-dsn postgresql://... --clinic-id C
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import uvicorn
from fastapi import FastAPI, Request, Response
from pymongo import AsyncMongoClient

from .bare_app import small_body, todo_read

PATH = "/api/v1/todo"


def read_app(mongodb_url: str, database: str, clinic_id: str, client_id: str) -> FastAPI:
    parent_id = f"{clinic_id}:{client_id}"
    state: dict[str, AsyncMongoClient[dict[str, Any]]] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["client"] = AsyncMongoClient(mongodb_url, tz_aware=True)
        yield
        await state["client"].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get(PATH)
    async def todo() -> Response:
        parent, clinic = await todo_read(state["client"][database], parent_id, clinic_id)
        return Response(small_body(parent, clinic), media_type="application/json")

    return app


def proxy_app(upstream: str) -> FastAPI:
    state: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["session"] = aiohttp.ClientSession(base_url=upstream)
        yield
        await state["session"].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get(PATH)
    async def todo(request: Request) -> Response:
        headers = {"authorization": request.headers.get("authorization", "")}
        async with state["session"].get(PATH, headers=headers) as answer:
            body = await answer.read()
            return Response(body, status_code=answer.status, media_type=answer.content_type)

    return app


def ingest_app(dsn: str, clinic_id: str) -> FastAPI:
    # sync's modules: the child process runs with services/sync on its path.
    from petportal_runtime.tables import outbox
    from petportal_sync.service_layer.services import validate_records

    from .sync_ingest import COLUMNS, jsonb_binary, rows_of

    outbox_columns = ["event_id", "event_type", "topic", "key", "value"]
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(dsn, min_size=2, max_size=2, init=jsonb_binary)
        yield
        await state["pool"].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response("{}", media_type="application/json")

    @app.post("/pims/v1/records")
    async def records(request: Request) -> Response:
        raw = json.loads(await request.body())["records"]
        valid, rejected = validate_records(raw, "US")
        now = datetime.now(UTC).isoformat()
        events = [
            (
                uuid.uuid4(),
                f"{record.kind}.received",
                "pims.records",
                f"{clinic_id}:{record.client_id}",
                json.dumps(
                    {
                        "event_type": f"{record.kind}.received",
                        "occurred_at": now,
                        "clinic_id": clinic_id,
                        "client_id": record.client_id,
                        "payload": record.model_dump(mode="json"),
                    }
                ).encode(),
            )
            for _, record in valid
            if hasattr(record, "client_id")
        ]
        table_rows = rows_of(clinic_id, [raw[index] for index, _ in valid])
        async with state["pool"].acquire() as connection, connection.transaction():
            for table, values in table_rows.items():
                await connection.copy_records_to_table(table, records=values, columns=COLUMNS[table])
            await connection.copy_records_to_table(outbox.name, records=events, columns=outbox_columns)
        body = json.dumps({"accepted": len(valid), "rejected": [r.index for r in rejected]})
        return Response(body, media_type="application/json")

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.framework_floor")
    parser.add_argument("kind", choices=["read", "proxy", "ingest"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mongodb-url")
    parser.add_argument("--database")
    parser.add_argument("--clinic-id")
    parser.add_argument("--client-id")
    parser.add_argument("--upstream")
    parser.add_argument("--database-dsn")
    args = parser.parse_args(argv)
    if args.kind == "read":
        if not (args.mongodb_url and args.database and args.clinic_id and args.client_id):
            parser.error("read needs --mongodb-url, --database, --clinic-id and --client-id")
        app = read_app(args.mongodb_url, args.database, args.clinic_id, args.client_id)
    elif args.kind == "proxy":
        if not args.upstream:
            parser.error("proxy needs --upstream")
        app = proxy_app(args.upstream)
    else:
        if not (args.database_dsn and args.clinic_id):
            parser.error("ingest needs --database-dsn and --clinic-id")
        app = ingest_app(args.database_dsn, args.clinic_id)
    # As bench.bare_app and the services: uvloop + httptools when installed, no access log.
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, lifespan="on")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
