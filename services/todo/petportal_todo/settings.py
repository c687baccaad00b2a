from __future__ import annotations

from pydantic import Field

from petportal_runtime.settings import ServiceSettings


class TodoSettings(ServiceSettings):
    service_name: str = "todo"
    max_request_body_bytes: int = Field(default=16 * 1024, ge=1024)  # its API takes no body
    mongodb_url: str = Field(default="mongodb://127.0.0.1:27117", description="MONGODB_URL")
    mongodb_database: str = Field(default="petportal_todo", min_length=1, max_length=63)
    # Events per fetched batch; each batch is applied in one MongoDB transaction.
    todo_batch_max_records: int = Field(default=1000, ge=1, le=10_000)
    # How long a fetch waits for data. It returns as soon as data is there on Kafka, but a broker
    # may hold it while some partitions have none (Tansu does): the bound of the list's staleness
    # when most partitions are quiet. Shorter costs idle fetches, a few dozen a second.
    todo_fetch_max_wait_ms: int = Field(default=20, ge=1, le=500)
