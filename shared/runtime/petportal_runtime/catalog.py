"""The one description of every deployable: name, port, whether it owns a PostgreSQL database.

The CLI, `make run`, the end-to-end stack, the benchmarks and the Helm chart's contract test read
this table; nothing else lists the services. Data only: importing it imports no service.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    database: bool  # owns a PostgreSQL database: migrations, outbox and inbox
    consumes: bool  # joins a Kafka consumer group named after the service
    client_data: bool = True  # holds data about clients: erases it and confirms (docs/erasure.md)

    @property
    def package(self) -> str:
        return f"petportal_{self.name}"

    @property
    def app_factory(self) -> str:
        return f"{self.package}.entrypoints.app:create_app"

    @property
    def database_name(self) -> str:
        return f"petportal_{self.name}"

    @property
    def url_variable(self) -> str:
        """The environment variable other services read to reach this one (`PETS_URL`)."""
        return f"{self.name.upper()}_URL"

    def migrations_dir(self) -> Path | None:
        """The alembic directory inside the installed package (found without importing it)."""
        if not self.database:
            return None
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise LookupError(f"{self.package} is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / "migrations"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("gateway", 8080, database=False, consumes=False, client_data=False),
    ServiceSpec("identity", 8081, database=True, consumes=True),
    ServiceSpec("pets", 8082, database=True, consumes=True),
    ServiceSpec("messaging", 8083, database=True, consumes=True),
    ServiceSpec("todo", 8084, database=False, consumes=True),
    ServiceSpec("sync", 8085, database=True, consumes=True),
    ServiceSpec("notify", 8086, database=True, consumes=True),
)
BY_NAME = {spec.name: spec for spec in SERVICES}
# What a consuming service logs once its consumers have joined their groups, after it is ready
# (`ServiceRuntime.start`): `make run` and the end-to-end stack wait for it.
CONSUMERS_STARTED = "consumers started"
DATABASE_SERVICES = tuple(spec for spec in SERVICES if spec.database)
# Every one of these must confirm an erasure before it is complete.
ERASING_SERVICES = tuple(spec.name for spec in SERVICES if spec.client_data)


def service(name: str) -> ServiceSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise LookupError(f"no service {name!r}; known: {', '.join(BY_NAME)}") from None
