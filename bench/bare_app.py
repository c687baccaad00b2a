"""The floor for `GET /api/v1/todo`: a bare ASGI app under uvicorn (same server, loop and HTTP parser
as the services), no framework, no auth, no middleware, no logging per request, that makes the same
MongoDB reads per request as todo's read model (`MongoReadModel.views`: the parent document with the
clinic document unioned in, one aggregate, one round trip) and answers a small JSON body.

`--reads two-find-one` makes the reads todo made before instead (two point reads, run concurrently):
a diagnostic, to compare with results measured against that floor.

    python -m bench.bare_app --port P --mongodb-url URL --database DB --clinic-id C --client-id K
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import uvicorn
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


Document = dict[str, Any]


async def todo_read(
    db: AsyncDatabase[Document], parent_id: str, clinic_id: str
) -> tuple[Document | None, Document | None]:
    """todo's read (`MongoReadModel.views`): the parent, the clinic `$unionWith`-ed in."""
    parent: Document | None = None
    clinic: Document | None = None
    cursor = await db["parents"].aggregate(
        [
            {"$match": {"_id": parent_id}},
            {"$unionWith": {"coll": "clinics", "pipeline": [{"$match": {"_id": clinic_id}}]}},
        ]
    )
    async for doc in cursor:
        if doc["_id"] == parent_id:
            parent = doc
        else:
            clinic = doc
    return parent, clinic


def small_body(parent: Document | None, clinic: Document | None) -> bytes:
    """The floors' answer: a badge and a count from the two documents."""
    unread = len(parent.get("unread_message_ids", ())) if parent else 0
    programs = len((clinic or {}).get("offered_programs") or {})
    return json.dumps({"badge": int(unread > 0) + programs, "unread_messages": unread}).encode()


class BareTodoApp:
    def __init__(
        self, mongodb_url: str, database: str, clinic_id: str, client_id: str, reads: str = "union"
    ) -> None:
        self.reads = reads
        self.mongodb_url = mongodb_url
        self.database = database
        self.clinic_id = clinic_id
        self.parent_id = f"{clinic_id}:{client_id}"
        self.client: AsyncMongoClient[dict[str, Any]] | None = None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = AsyncMongoClient(self.mongodb_url, tz_aware=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        assert self.client is not None
        db = self.client[self.database]
        if self.reads == "union":
            parent, clinic = await todo_read(db, self.parent_id, self.clinic_id)
        else:
            parent, clinic = await asyncio.gather(
                db["parents"].find_one({"_id": self.parent_id}),
                db["clinics"].find_one({"_id": self.clinic_id}),
            )
        body = small_body(parent, clinic)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mongodb-url", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--clinic-id", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--reads", choices=["union", "two-find-one"], default="union")
    args = parser.parse_args(argv)
    app = BareTodoApp(args.mongodb_url, args.database, args.clinic_id, args.client_id, args.reads)
    # The services run `uvicorn.run(factory, host, port, log_config=None)` with uvicorn's access log
    # disabled by their logging setup: same defaults here (uvloop + httptools when installed).
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, lifespan="on")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
