"""The parent's overview (`service_layer.overview.OverviewReader`) in one SQL statement.

The home screen asks for it on every visit, so it is read the cheapest way the store allows: one
statement, one round trip, with PostgreSQL assembling the pets, the appointment records and the
clinics as JSON, sent on the pooled connection's driver (asyncpg) directly. No ORM rows, no session,
no transaction: a single SELECT is a consistent snapshot on its own, and it writes nothing.

The rows it selects are the repositories' (`PetRepository.for_clients`, `PhotoRepository.which`,
`PetRecordRepository.for_pets(..., include_unassigned=True)`, `ClinicRepository.get_many`); the
integration tests compare its answers with theirs.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import date
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from petportal_runtime.auth import ClientRef
from petportal_runtime.db import make_engine
from petportal_schemas import ClinicSettingsChanged

from ..domain import Clinic, Pet, PetRecord
from ..service_layer.overview import OverviewRows

# $1, $2: the memberships' clinic ids and client ids, pairwise.
OVERVIEW_SQL = """
WITH memberships AS (
    SELECT * FROM unnest($1::text[], $2::text[]) AS m(clinic_id, client_id)
),
listed AS (
    SELECT p.clinic_id, p.client_id, p.patient_id, p.name, p.species, p.breed, p.sex,
           p.date_of_birth, p.colour, p.weight_kg, p.microchip,
           EXISTS (
               SELECT 1 FROM pet_photos ph
               WHERE ph.clinic_id = p.clinic_id AND ph.patient_id = p.patient_id
           ) AS has_photo
    FROM pets p
    WHERE (p.clinic_id, p.client_id) IN (SELECT clinic_id, client_id FROM memberships)
      AND p.gone_at IS NULL
)
SELECT
    (SELECT json_agg(l ORDER BY l.name, l.clinic_id, l.patient_id) FROM listed l) AS pets,
    (SELECT json_agg(json_build_array(r.clinic_id, r.patient_id, r.record_id, r.payload))
       FROM pet_records r
      WHERE (r.clinic_id, r.client_id) IN (SELECT clinic_id, client_id FROM listed)
        AND r.kind = 'appointment'
        AND r.active
        AND (r.patient_id IS NULL
             OR (r.clinic_id, r.patient_id) IN (SELECT clinic_id, patient_id FROM listed))
    ) AS appointments,
    (SELECT json_agg(json_build_array(c.clinic_id, c.name, c.pims, c.timezone, c.settings))
       FROM clinics c
      WHERE c.clinic_id = ANY($1::text[])
    ) AS clinics
"""


# A pooled connection the server has closed (restarted, or dropped it idle): the read is tried once
# more, on another connection. Not a timeout: trying again would double the wait.
_STALE_CONNECTION: tuple[type[BaseException], ...] = (
    asyncpg.ConnectionDoesNotExistError,
    # The server's close arriving while the statement is being sent ("another operation is in
    # progress"): the connection is as good as closed.
    asyncpg.InternalClientError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    ConnectionError,
)


class SqlOverviewReader:
    """`OverviewReader` on an engine of its own: a few connections to the service's database, with
    the same timeouts (and so the same 503s); one the server is known to have closed is not handed
    out (`make_engine`). A connection the server closes during the read fails it, and the read is made
    once more on another connection; a connection that failed is dropped from the pool.

    The pool does not grow past `connections`: more reads wait for a free one (bounded by the
    dependency timeout). A read takes one round trip, so a few connections serve any rate one
    process can answer, and none is opened and closed again under load (a login, a prepared
    statement and type introspection each time: many times the read itself).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def for_database(
        cls, database_url: str, *, timeout: float, application_name: str, connections: int = 4
    ) -> SqlOverviewReader:
        engine = make_engine(
            database_url,
            pool_size=connections,
            max_overflow=0,
            timeout=timeout,
            application_name=application_name,
        )
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def __call__(self, memberships: Collection[ClientRef]) -> OverviewRows:
        pairs = list(memberships)
        clinic_ids, client_ids = [m.clinic_id for m in pairs], [m.client_id for m in pairs]
        try:
            row = await self._read(clinic_ids, client_ids)
        except _STALE_CONNECTION:
            row = await self._read(clinic_ids, client_ids)
        return overview_rows(
            set(clinic_ids), _json(row["pets"]), _json(row["appointments"]), _json(row["clinics"])
        )

    async def _read(self, clinic_ids: list[str], client_ids: list[str]) -> Any:
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            try:
                return await raw.driver_connection.fetchrow(  # type: ignore[union-attr]
                    OVERVIEW_SQL, clinic_ids, client_ids
                )
            except BaseException:
                # Broken, timed out or cancelled mid-statement: not one to hand out again.
                await connection.invalidate()
                raise


def _json(value: Any) -> list[Any]:
    """A json_agg column (None when it aggregated no row), already decoded by the engine's json
    codec on its connections (text otherwise)."""
    if value is None:
        return []
    found: list[Any] = json.loads(value) if isinstance(value, str | bytes) else value
    return found


def overview_rows(
    clinic_ids: Collection[str],
    pets: list[dict[str, Any]],
    records: list[list[Any]],
    clinics: list[list[Any]],
) -> OverviewRows:
    """The statement's JSON as domain objects (as the repositories make them from their rows)."""
    listed = [_pet(p) for p in pets]
    appointments: dict[tuple[str, str], list[PetRecord]] = {}
    for clinic_id, patient_id, record_id, payload in records:
        appointments.setdefault((clinic_id, patient_id or ""), []).append(
            PetRecord("appointment", record_id, patient_id, payload, True)
        )
    known = {c[0]: _clinic(*c) for c in clinics}
    return OverviewRows(
        listed, appointments, {clinic_id: known.get(clinic_id, Clinic(clinic_id)) for clinic_id in clinic_ids}
    )


def _pet(p: dict[str, Any]) -> Pet:
    born = p["date_of_birth"]
    weight = p["weight_kg"]
    return Pet(
        clinic_id=p["clinic_id"],
        client_id=p["client_id"],
        patient_id=p["patient_id"],
        name=p["name"],
        species=p["species"],
        breed=p["breed"],
        sex=p["sex"],
        date_of_birth=date.fromisoformat(born) if born is not None else None,
        colour=p["colour"],
        weight_kg=float(weight) if weight is not None else None,
        microchip=p["microchip"],
        has_photo=bool(p["has_photo"]),
    )


def _clinic(clinic_id: str, name: str | None, pims: str, timezone: str, settings: Any) -> Clinic:
    parsed = ClinicSettingsChanged.model_validate(settings) if settings else ClinicSettingsChanged()
    return Clinic(clinic_id, name, pims, timezone, parsed)
