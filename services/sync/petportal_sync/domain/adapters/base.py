"""Native PIMS payloads mapped to the canonical records, one table per PIMS (no I/O).

An adapter knows how a PIMS names its record types and fields. It turns each native record into a
canonical record (a dict that `domain.records.validate_record` then checks like any connector's), and
turns the canonical field names of any rejection back into the PIMS's own, so the connector's authors
read errors in the names they sent. A value that cannot be converted (a malformed date, a timestamp
that is not a number) is passed through unchanged: validation then rejects it with its field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class Field:
    canonical: str
    native: str  # a dotted path inside the native record's fields
    convert: Convert | None = None


@dataclass(frozen=True)
class Resource:
    """One native record type: the canonical kind it becomes, and its fields."""

    kind: str
    fields: tuple[Field, ...]
    # The canonical kind to use instead when the record says it was deleted (e.g. contact_removed),
    # decided by `removed(fields)`.
    removed_kind: str | None = None
    removed: Callable[[Mapping[str, Any]], bool] | None = None
    constants: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Native:
    """A native record unwrapped: its type name, its fields, and the prefix of their error paths."""

    type_name: str | None
    fields: Mapping[str, Any] | None
    prefix: str


@dataclass(frozen=True)
class Adapter:
    pims: str
    resources: Mapping[str, Resource]
    unwrap: Callable[[Any], Native]
    # The native name of the record's type, for "unknown type" errors.
    type_field: str

    def to_canonical(self, raw: Any) -> tuple[dict[str, Any] | None, dict[str, str], str | None]:
        """(canonical record or None, canonical → native field names, error when not mappable)."""
        native = self.unwrap(raw)
        if native.type_name is None or native.fields is None:
            return None, {}, f"a {self.pims} record must be {self.describe()}"
        resource = self.resources.get(native.type_name)
        if resource is None:
            known = ", ".join(sorted(self.resources))
            return None, {}, f"unknown {self.pims} record type {native.type_name!r}: one of {known}"
        names: dict[str, str] = {}
        record: dict[str, Any] = {"kind": resource.kind, **resource.constants}
        removed = resource.removed is not None and resource.removed(native.fields)
        if removed and resource.removed_kind is not None:
            record["kind"] = resource.removed_kind
        for f in resource.fields:
            names[f.canonical] = native.prefix + f.native
            found, value = _get(native.fields, f.native)
            if not found:
                continue
            if f.convert is not None and value is not None:
                # Left as sent when it does not convert: validation then names the field.
                with contextlib.suppress(TypeError, ValueError, OverflowError, OSError):
                    value = f.convert(value)
            record[f.canonical] = value
        if removed and resource.removed_kind is not None:
            keep = {"kind", "client_id", "patient_id", "version"}
            record = {k: v for k, v in record.items() if k in keep}
        names["kind"] = native.prefix.rstrip(".") or self.type_field
        return record, names, None

    def describe(self) -> str:
        return {
            "ezyvet": 'an object with one key naming the resource, as ezyVet lists them ({"animal": {...}})'
        }.get(self.pims, f'{{"{self.type_field}": <type>, ...}}')


def native_field(names: Mapping[str, str], canonical: str) -> str:
    """A canonical error path in the PIMS's naming (the longest mapped prefix wins)."""
    if canonical in names:
        return names[canonical]
    head, _, rest = canonical.partition(".")
    if rest and head in names:
        return f"{names[head]}.{rest}"
    return canonical


def _get(fields: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


# --- converters shared by the adapters ---------------------------------------------------------


def text_id(value: Any) -> Any:
    """PIMS ids are often integers: the portal's ids are text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def unix_time(value: Any) -> Any:
    """Seconds since the epoch (ezyVet sends numbers or numeric strings) → an aware datetime."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return value


def unix_date(value: Any) -> Any:
    converted = unix_time(value)
    return converted.date() if isinstance(converted, datetime) else value


def us_date(value: Any) -> Any:
    """MM/DD/YYYY (US on-premise exports) → a date; ISO dates pass."""
    if isinstance(value, str) and value.count("/") == 2:
        return datetime.strptime(value.strip(), "%m/%d/%Y").date()
    return value


def seconds_to_minutes(value: Any) -> Any:
    return (
        max(1, round(value / 60)) if isinstance(value, int | float) and not isinstance(value, bool) else value
    )


def truthy(value: Any) -> Any:
    """ "Y"/"N", "1"/"0", "true"/"false", 1/0 → bool."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"y", "yes", "1", "true", "t"}:
            return True
        if lowered in {"n", "no", "0", "false", "f", ""}:
            return False
    if isinstance(value, int):
        return bool(value)
    return value


def epoch_version(value: Any) -> Any:
    """A modified-at as seconds since the epoch → the record's version (an integer)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def lowered(mapping: Mapping[str, str]) -> Convert:
    """A PIMS code → the canonical value (codes compared case-insensitively; unknown ones pass)."""
    table = {k.lower(): v for k, v in mapping.items()}

    def convert(value: Any) -> Any:
        return table.get(value.strip().lower(), value) if isinstance(value, str) else value

    return convert


def iso_or_us_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    return us_date(value)
